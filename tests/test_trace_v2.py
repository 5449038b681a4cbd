"""Trace v2: rare-term candidates, canonical words, page-level answers with segments, compare, and
restoring from a source (`check --index`, `restore --index`)."""
import json
import sqlite3

import pytest

from unspin.cli import main
from unspin.fingerprint import TERM_BAND, rare_terms, words_at, words_of
from unspin.index import BATCH, Index, check_index
from unspin.trace import Segment, compare, source_restorations, trace

# Made-up reference documents (written for this test), each about 60-80 words.
DOCS = {
    "harbour": "The harbour authority of Port Veldane announced on Monday that the old lighthouse would be turned "
               "into a small museum. Repairs to the tower will cost about 4,000 pounds, and volunteers from the "
               "Ostrava Rowing Club have offered to paint the walls. The museum will show the brass lamp, a "
               "collection of ship logs and photographs of storms that hit the coast in the last century. It "
               "should open to visitors in early June.",
    "orchard": "Growers in the Kesterby valley said the late frost in April damaged most of the cherry blossom this "
               "year. Farmer Idris Pellow told the county newspaper that his orchard would produce less than half "
               "of a normal harvest. The regional council has promised a fund of 250,000 euros to help families "
               "who lost their income, and it will ask the national government for further support before the "
               "autumn markets open.",
    "rail": "Engineers working for Northline Railways finished the new tunnel under Mount Caldrey three weeks "
            "ahead of schedule. The tunnel is 2,400 metres long and will cut the journey between Amberfield and "
            "Rusk by almost forty minutes. Passengers complained for years about the slow line over the pass, "
            "which was often closed by snow. The first trains will run through the tunnel in September, the "
            "company said in a statement.",
    "library": "The public library in Mellingford will stay open until midnight during the exam season, the city "
               "council decided after a petition signed by 1,800 students. Librarian Sofia Marchetti said the "
               "reading rooms are full every evening and that many young people have no quiet place to study at "
               "home. Extra staff will be paid from the culture budget, and the cafe on the ground floor will "
               "also keep longer hours.",
    "bees": "A beekeeper in Thornwick has counted more than sixty thousand bees in a single hive, a record for the "
            "county. Walter Agbaje keeps twelve hives on the roof of an old textile mill and sells the honey at "
            "the Saturday market. He believes the bees thrive because the nearby park was planted with lavender "
            "and clover. Local schools now visit the roof every spring to learn how honey is made.",
    "chess": "A twelve year old from Pennbury won the national junior chess championship after a tense final game "
             "that lasted almost five hours. Amara Lindqvist beat the defending champion with a daring sacrifice "
             "of her queen in the middle game. Her coach said she practises for two hours every day after school "
             "and studies old games from the 1970s. She will represent the country at the world event in Tallinn.",
}

# Written for this test: the first two sentences of "harbour" with about a quarter of the words
# swapped for thesaurus synonyms, then a paragraph that is in no indexed document.
SHORT_SPUN = ("The harbour authority of Port Veldane declared on Monday that the aged lighthouse would be "
              "transformed into a little museum. Repairs to the tower will price about 4, 000 pounds, and "
              "volunteers from the Ostrava Rowing Club have offered to paint the walls.")
UNRELATED = ("My neighbour grows tomatoes in buckets on her balcony and swears that music helps them ripen. Every "
             "evening she plays old records for them, and in August she gives away more fruit than she can eat. "
             "Nobody on our street has ever complained about the noise.")


@pytest.fixture(scope="module")
def index_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("v2") / "refs.sqlite"
    with Index(path) as idx:
        idx.add([{"id": k, "text": t} for k, t in DOCS.items()])
    return path


def _rowid(path, doc_id):
    with sqlite3.connect(path) as db:
        return db.execute("SELECT rowid FROM docs WHERE id=?", (doc_id,)).fetchone()[0]


def _segments_ok(text, matches):
    """Segments lie within the query, are ordered and do not overlap (within and across the cover)."""
    seen = []
    for m in matches:
        for s in m.segments:
            assert 0 <= s.start < s.end <= len(text)
            assert s.kind in ("verbatim", "spun", "rewritten")
        seen.append([(s.start, s.end) for s in m.segments])
    return seen


def test_canonical_words_ignore_case_punctuation_apostrophes_and_number_format():
    forms = ["The U. N. sent 4, 000 troops; history's first.", "the U.N. sent 4,000 troops - history s first",
             "THE UN SENT 4000 TROOPS HISTORYS FIRST"]
    norms = [[n for _, n in words_of(f)] for f in forms]
    assert norms[0] == norms[1] == ["the", "un", "sent", "4000", "troops", "history", "first"]
    assert norms[2][:5] == norms[0][:5]
    # offsets still index the text
    text = forms[0]
    assert [text[a:b] for _, _, a, b in words_at(text)][1:4] == ["U. N.", "sent", "4, 000"]
    # a comma list of numbers is not one number; an initial before a name is not an abbreviation
    assert [n for _, n in words_of("1, 2, 3 and 12, 500")] == ["1", "2", "3", "and", "12500"]
    assert [n for _, n in words_of("John F. Kennedy")] == ["john", "f", "kennedy"]
    assert rare_terms(words_of(forms[0])) == rare_terms(words_of(forms[1])) >= {"4000"}


def test_short_partial_copy_with_unrelated_text_is_found_by_its_part(index_path):
    query = SHORT_SPUN + "\n\n" + UNRELATED
    with Index(index_path, create=False) as idx:
        matches = trace(idx, query)
        assert [m.doc_id for m in matches][:1] == ["harbour"]
        (seg,) = matches[0].segments
        assert seg.start == 0 and seg.end <= len(SHORT_SPUN) + 1 and seg.kind == "spun"
        _segments_ok(query, matches)
        # the rare terms alone (no LSH band) bring the source in as a candidate
        keys, _ = idx.fingerprinter.band_keys(query)
        term_keys = [k for k in keys if k[0] == TERM_BAND]
        rowid = _rowid(index_path, "harbour")
        assert rowid in [d for d, _ in idx.candidates_of_keys(term_keys, 10)]
        assert trace(idx, UNRELATED) == []


def test_stripped_copy_is_found(index_path):
    spun = ("Engineers operating for Northline Railways completed the brand new tunnel beneath Mount Caldrey three "
            "weeks ahead of timetable. The tunnel is 2,400 metres lengthy and will cut the trip between "
            "Amberfield and Rusk by nearly forty minutes. Passengers moaned for years about the sluggish line "
            "over the pass, which was frequently shut by snow.")
    stripped = " ".join("".join(c for c in spun.replace("'", " ") if c.isalpha() or c.isspace()).split())
    assert "," not in stripped and "2" not in stripped
    with Index(index_path, create=False) as idx:
        matches = trace(idx, stripped)
        assert matches and matches[0].doc_id == "rail"
        _segments_ok(stripped, matches)


def test_stitched_page_lists_both_sources_spun_first(index_path):
    spun_a = ("Growers in the Kesterby valley stated the belated frost in April harmed most of the cherry flower "
              "this year. Farmer Idris Pellow informed the county paper that his orchard would generate less than "
              "half of a regular harvest. The regional council has pledged a fund of 250,000 euros to assist "
              "families who lost their earnings, and it will request the national administration for additional "
              "backing before the autumn markets open.")
    verbatim_b = DOCS["bees"].split(". He believes")[0] + "."
    page = spun_a + "\n\n" + verbatim_b
    with Index(index_path, create=False) as idx:
        matches = trace(idx, page, top=3)
    assert [m.doc_id for m in matches[:2]] == ["orchard", "bees"]
    segs = _segments_ok(page, matches)
    a_end = len(spun_a)
    assert all(e <= a_end + 2 for _, e in segs[0]) and all(s >= a_end for s, _ in segs[1])
    assert {s.kind for s in matches[1].segments} == {"verbatim"}
    assert "spun" in {s.kind for s in matches[0].segments}
    flat = sorted(r for m in matches[:2] for r in [(s.start, s.end) for s in m.segments])
    assert all(b[0] >= a[1] for a, b in zip(flat, flat[1:]))  # no overlap across sources
    d = matches[0].to_dict()
    assert d["segments"] and set(d["segments"][0]) == {"start", "end", "kind"}


def test_ai_rewrite_like_copy_is_found(index_path):
    # clauses reordered, contractions, punctuation flipped, numbers reformatted (written for this test)
    rewrite = ("Librarian Sofia Marchetti said the reading rooms are full every evening - and many young people "
               "don't have a quiet place to study at home. After a petition signed by 1800 students, the city "
               "council decided the public library in Mellingford will stay open until midnight during the exam "
               "season. The cafe on the ground floor will also keep longer hours; extra staff will be paid from "
               "the culture budget.")
    with Index(index_path, create=False) as idx:
        matches = trace(idx, rewrite)
    assert matches and matches[0].doc_id == "library"
    _segments_ok(rewrite, matches)


def test_term_postings_follow_replace_and_remove(tmp_path):
    path = tmp_path / "t.sqlite"

    def term_rows(idx):
        with sqlite3.connect(path) as db:
            return db.execute("SELECT COUNT(*) FROM band WHERE band_no=?", (TERM_BAND,)).fetchone()[0]

    with Index(path) as idx:
        idx.add([{"id": "x", "text": DOCS["chess"]}, {"id": "y", "text": DOCS["bees"]}])
        expected = sum(len(rare_terms(words_of(DOCS[k]))) for k in ("chess", "bees"))
        assert term_rows(idx) == expected
        idx.add([{"id": "x", "text": DOCS["rail"]}])  # replace: the chess terms go, the rail terms come
        assert term_rows(idx) == len(rare_terms(words_of(DOCS["rail"]))) + len(rare_terms(words_of(DOCS["bees"])))
        probe = "Amara Lindqvist Pennbury Tallinn queen sacrifice championship 1970s"
        assert _rowid(path, "x") not in [d for d, _ in idx.candidates(probe)]
        assert [m.doc_id for m in idx.trace(DOCS["rail"])][:1] == ["x"]
        idx.remove("y")
        assert term_rows(idx) == len(rare_terms(words_of(DOCS["rail"])))
        idx.remove("x")
        assert term_rows(idx) == 0
    assert check_index(path)["ok"]


def test_a_failed_add_leaves_documents_and_postings_consistent(tmp_path):
    """A batch that fails mid-way is rolled back with its postings (the same transaction as the documents);
    `index check` finds nothing wrong and every document's terms are posted exactly."""
    path = tmp_path / "k.sqlite"
    texts = list(DOCS.values())

    def docs():
        for i in range(BATCH + 20):
            yield {"id": f"d{i}", "text": texts[i % len(texts)] + f" Item {i}."}
        raise RuntimeError("killed")

    with Index(path) as idx, pytest.raises(RuntimeError):
        idx.add(docs())
    report = check_index(path)
    assert report["ok"] and report["documents"] == BATCH
    db = sqlite3.connect(path)
    n_terms = db.execute("SELECT COUNT(*) FROM band WHERE band_no=?", (TERM_BAND,)).fetchone()[0]
    stored = [t for (t,) in db.execute("SELECT text FROM docs")]
    assert n_terms == sum(len(rare_terms(words_of(t))) for t in stored)
    assert db.execute("SELECT COUNT(*) FROM band WHERE doc NOT IN (SELECT rowid FROM docs)").fetchone()[0] == 0


def test_compare_two_texts_without_an_index(tmp_path, capsys):
    copy = ("The harbour authority of Port Veldane declared on Monday that the aged lighthouse would be "
            "transformed into a little museum.")
    m = compare(copy, DOCS["harbour"], source_id="harbour")
    assert m.segments and m.segments[0].kind == "spun" and m.coverage > 0.6
    assert ("sub_channel", "declared", "announced") in m.alignment
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text(copy)
    b.write_text(DOCS["harbour"])
    assert main(["compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "declared" in out and "announced" in out and "spun" in out
    assert main(["compare", str(a), str(b), "--format", "json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["segments"][0]["kind"] == "spun" and d["alignment"]
    assert main(["compare", str(a), str(b), "--format", "html", "-o", str(tmp_path / "c.html")]) == 0
    page = (tmp_path / "c.html").read_text()
    assert "data-pair" in page and "restored from" in page and "Port Veldane" in page
    assert main(["compare", str(a), str(tmp_path / "missing.txt")]) == 2


def test_a_spinner_the_channel_does_not_know_is_still_undone_word_for_word():
    # Swaps no thesaurus lists (a spinner with a dictionary of its own): the part reads "rewritten",
    # yet each swapped word stands where its original stood, so the source's wording is trusted.
    swaps = {"Engineers": "Dancers", "finished": "painted", "tunnel": "pancake", "schedule": "carpet",
             "journey": "guitar", "complained": "whistled", "slow": "purple"}
    copy = " ".join(swaps.get(w, w) for w in DOCS["rail"].split())
    from unspin.trace import source_replacements
    m = compare(copy, DOCS["rail"], source_id="rail")
    assert any(s.kind == "rewritten" for s in m.segments)
    restored = {copy[a:b]: w for a, b, w in source_replacements(m, DOCS["rail"])}
    assert restored["pancake"] == "tunnel" and restored["whistled"] == "complained"
    # A word swapped beside words put in or left out is not paired with what stood there.
    moved = copy.replace("purple line", "purple old winding line")
    m = compare(moved, DOCS["rail"], source_id="rail")
    assert "purple" not in {moved[a:b] for a, b, _ in source_replacements(m, DOCS["rail"])}
    # A phrase in place of a word, between unchanged words, is one swap.
    phrase = copy.replace("Passengers", "Ticket holders")
    m = compare(phrase, DOCS["rail"], source_id="rail")
    (swap,) = [(a, b, w) for a, b, w in source_replacements(m, DOCS["rail"]) if "Ticket" in phrase[a:b]]
    assert phrase[swap[0]:swap[1]].startswith("Ticket holders") and swap[2].startswith("Passengers")
    assert len(phrase[swap[0]:swap[1]].split()) == len(swap[2].split()) + 1


def test_alignment_page_keeps_punctuation_paragraphs_and_links_blocks(index_path, tmp_path):
    q = tmp_path / "q.txt"
    q.write_text(SHORT_SPUN + "\n\n" + UNRELATED)
    out = tmp_path / "a.html"
    assert main(["trace", "--index", str(index_path), str(q), "--format", "html", "-o", str(out)]) == 0
    page = out.read_text()
    assert "4, 000 pounds," in page and "Club have offered" in page
    assert page.count("data-pair='m0r") >= 4  # each replaced block on both sides
    assert "class='outside'" in page  # the unrelated paragraph is not from this source
    assert "restored from harbour" in page


def test_check_and_restore_with_an_index_take_the_sources_wording(index_path, tmp_path, capsys):
    q = tmp_path / "q.txt"
    q.write_text(SHORT_SPUN + "\n\n" + UNRELATED)
    assert main(["restore", "--index", str(index_path), str(q), "--changes"]) == 0
    captured = capsys.readouterr()
    assert "announced on Monday that the old lighthouse would be turned into a small museum" in captured.out
    assert "declared\tannounced\t1.00\tharbour" in captured.err
    assert main(["check", "--index", str(index_path), str(q), "--format", "json"]) == 0
    d = json.loads(capsys.readouterr().out)
    by_origin = {}
    for s in d["spans"]:
        by_origin.setdefault(s["evidence"]["origin"], []).append(s)
    assert {s["text"]: s["suggestion"] for s in by_origin["source"]}["declared"] == "announced"
    assert all(s["start"] >= len(SHORT_SPUN) for s in by_origin.get("decoder", []))
    assert "announced" in d["restored"]
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"id": "a", "text": SHORT_SPUN + "\n\n" + UNRELATED}) + "\n")
    assert main(["check", "--index", str(index_path), "--jsonl", str(rows)]) == 0
    row = json.loads(capsys.readouterr().out)
    assert any(s["evidence"].get("source") == "harbour" for s in row["spans"])
    with Index(index_path, create=False) as idx:
        (r,) = source_restorations(idx, SHORT_SPUN)
    assert r.doc_id == "harbour" and all(SHORT_SPUN[a:b] != w for a, b, w in r.replacements)
    assert main(["check", "--index", str(tmp_path / "none.sqlite"), str(q)]) == 2


def test_segment_serialisation():
    assert Segment(3, 9, "verbatim").to_dict() == {"start": 3, "end": 9, "kind": "verbatim"}


def test_segments_never_overlap_and_stay_inside_the_query(index_path):
    """Pages pieced together from indexed and unindexed text, in several orders."""
    first = {k: t.split(". ")[0] + "." for k, t in DOCS.items()}
    pages = [SHORT_SPUN + " " + DOCS["chess"], DOCS["rail"] + "\n" + UNRELATED + "\n" + DOCS["bees"],
             UNRELATED + " " + SHORT_SPUN, " ".join(first.values()), DOCS["library"] + " " + DOCS["library"],
             DOCS["orchard"][::-1], "4, 000 " * 40]
    with Index(index_path, create=False) as idx:
        for page in pages:
            matches = trace(idx, page)
            _segments_ok(page, matches)
            cover = [(s.start, s.end) for m in matches for s in m.segments]
            # the sources of the cover (before any alternative) explain disjoint parts
            ids = [m.doc_id for m in matches]
            assert len(ids) == len(set(ids))
            for m in matches:
                assert m.explained_words >= len(m.segments) and 0 <= m.coverage <= 1
            assert all(0 <= a < b <= len(page) for a, b in cover)
        two = trace(idx, DOCS["rail"] + "\n" + UNRELATED + "\n" + DOCS["bees"])
        assert {m.doc_id for m in two} == {"rail", "bees"} and two[0].coverage >= two[1].coverage
        spans = sorted((s.start, s.end) for m in two for s in m.segments)
        assert all(b[0] >= a[1] for a, b in zip(spans, spans[1:]))
