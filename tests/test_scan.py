"""`unspin scan`: every input format, bad records as error rows, resume after an interruption,
the same result on a Dask cluster, and spin families of hand-made copies.

The models are the tiny ones of conftest.py; the texts are written here.
"""
import csv
import gzip
import io
import json
import subprocess
import sys
from dataclasses import replace

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from unspin import scan as scan_mod
from unspin.cli import main
from unspin.scan import ScanSpec, group_families, read_output, scan

# A story, two spun copies made with the tiny channel's pairs (said/stated/mentioned, plan/scheme,
# more/extra, cost/price, soldiers/infantrymen, front lines/entrance traces), and unrelated stories.
STORY = ("The minister said on Monday that the plan would cost more than expected, and the police said the "
         "road to the coast was closed until Friday. The soldiers returned from the front lines in March, and "
         "officials said that 40 more troops would arrive at the border before the storm reached the town of "
         "Harwick. She said the report on the new plant was late again.")
COPY_1 = ("The minister stated on Monday that the scheme would price extra than expected, and the police stated "
          "the road to the coast was closed until Friday. The infantrymen returned from the entrance traces in "
          "March, and officials mentioned that 40 extra troops would arrive at the border before the storm "
          "reached the town of Harwick. She stated the report on the new plant was late again.")
COPY_2 = ("The minister mentioned on Monday that the plan would price more than expected, and the police "
          "mentioned the road to the coast was closed until Friday. The soldiers returned from the front traces "
          "in March, and officials stated that 40 more troops would arrive at the border before the storm "
          "reached the town of Harwick. She mentioned the report on the new plant was late again.")
OTHER_1 = ("A small bakery in the valley sells bread every morning, and its owner bakes each loaf by hand in an "
           "old stone oven. Customers often wait in a long queue outside, chatting about the weather, their "
           "gardens and the price of flour, while children press their noses against the window to watch the "
           "dough rise slowly on wooden trays.")
OTHER_2 = ("Astronomers watched a faint comet cross the northern sky for three weeks, taking photographs every "
           "night from a hill far away from city lights. Their notes describe a pale green tail that grew longer "
           "as the comet moved closer to the sun, then faded quickly once it swung around and headed back into "
           "the dark edges of the solar system.")

DOCS = [("story", STORY), ("other-1", OTHER_1), ("copy-1", COPY_1), ("other-2", OTHER_2), ("copy-2", COPY_2)]


@pytest.fixture(scope="module")
def spec(tiny_arpa, tiny_channel_path):
    return ScanSpec(lm=str(tiny_arpa), channel=str(tiny_channel_path))


def write_jsonl(path, docs, gz=False):
    data = "".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in docs).encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return str(path)


def make_warc(path, pages, corrupt_at=None, gz=True):
    """A WARC file of HTML responses (url, html); the record number `corrupt_at` is damaged."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    buf = io.BytesIO()
    writer = WARCWriter(buf, gzip=gz)
    offsets = []
    for url, page in pages:
        headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
        record = writer.create_warc_record(url, "response", payload=io.BytesIO(page.encode()), http_headers=headers)
        offsets.append(buf.tell())
        writer.write_record(record)
    data = bytearray(buf.getvalue())
    if corrupt_at is not None:
        start = offsets[corrupt_at]
        data[start + 12:start + 60] = b"#" * 48
    path.write_bytes(bytes(data))
    return str(path)


def page(text):
    return f"<!doctype html><html><body><nav>Home | News</nav><article><p>{text}</p></article></body></html>"


def rows_by_id(out):
    return {r["id"]: r for r in read_output(out).to_pylist()}


def test_every_input_format(tmp_path, spec):
    jsonl = write_jsonl(tmp_path / "a.jsonl", DOCS[:1])
    jsonl_gz = write_jsonl(tmp_path / "b.jsonl.gz", [("gz-1", OTHER_1)], gz=True)
    csv_path = tmp_path / "c.csv"
    with open(csv_path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["key", "body", "extra"])
        w.writerow(["csv-1", OTHER_2, "x"])
    parquet_path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"key": ["pq-1"], "body": [COPY_1]}), parquet_path)
    warc = make_warc(tmp_path / "e.warc.gz", [("https://www.news.example/a", page(COPY_2))])
    folder = tmp_path / "pages"
    folder.mkdir()
    (folder / "one.txt").write_text(STORY)
    (folder / "two.html").write_text(page(OTHER_1))
    out = tmp_path / "out"
    # CSV and Parquet take their columns from --id-column/--text-column; JSONL rows need those names too
    summary = scan([str(csv_path), str(parquet_path)], out / "cols", spec, workers=1, id_column="key",
                   text_column="body")
    assert summary.documents == 2 and summary.errors == 0
    assert set(rows_by_id(out / "cols")) == {"csv-1", "pq-1"}
    summary = scan([jsonl, jsonl_gz, warc, str(folder)], out / "rest", spec, workers=1)
    rows = rows_by_id(out / "rest")
    assert summary.documents == 5 and summary.errors == 0
    assert {"story", "gz-1", "one.txt", "two.html"} <= set(rows)
    web = next(r for r in rows.values() if r["url"])
    assert web["url"] == "https://www.news.example/a" and web["site"] == "news.example" and web["date"]
    assert web["id"].startswith("<urn:uuid:")
    for r in rows.values():
        assert r["verdict"] and r["error"] is None and r["n_words"] > 40, r
    # the HTML page was reduced to its main text: the menu is not counted as words
    assert rows["two.html"]["n_words"] == len(OTHER_1.split())


@pytest.mark.parametrize("name", ["crawl.warc.gz", "crawl.warc"])
def test_corrupt_warc_record_is_an_error_row(tmp_path, spec, name):
    pages = [("https://a.example/1", page(STORY)), ("https://a.example/2", page(OTHER_1)),
             ("https://a.example/3", page(OTHER_2))]
    warc = make_warc(tmp_path / name, pages, corrupt_at=1, gz=name.endswith(".gz"))
    summary = scan([warc], tmp_path / "out", spec, workers=1)
    rows = read_output(tmp_path / "out").to_pylist()
    assert summary.errors == 1
    errors = [r for r in rows if r["error"]]
    assert len(errors) == 1 and "corrupt WARC record" in errors[0]["error"] and errors[0]["verdict"] is None
    assert sorted(r["url"] for r in rows if not r["error"]) == ["https://a.example/1", "https://a.example/3"]


def test_bad_rows_become_error_rows(tmp_path, spec):
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps({"id": "ok", "text": STORY}) + "\n[1, 2]\n" + json.dumps({"id": "n"}) + "\n{oops\n")
    summary = scan([str(path)], tmp_path / "out", spec, workers=1)
    rows = read_output(tmp_path / "out").to_pylist()
    assert [r["error"] is None for r in rows] == [True, False, False, False]
    assert summary.errors == 3 and rows[1]["input"].endswith("rows.jsonl:2")


def test_parquet_without_text_column_is_a_clear_error(tmp_path, models, capsys):
    path = tmp_path / "rows.parquet"
    pq.write_table(pa.table({"id": ["a"], "body": [STORY]}), path)
    code = main(["scan", str(path), "--out", str(tmp_path / "out"), *models])
    err = capsys.readouterr().err
    assert code == 2 and "'text'" in err and "--text-column" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_interrupted_scan_resumes_and_matches_a_full_run(tmp_path, spec):
    docs = [(f"{name}-{k}", text) for k in range(3) for name, text in DOCS]
    rows_path = write_jsonl(tmp_path / "rows.jsonl", docs)
    full = scan([rows_path], tmp_path / "full", spec, workers=1, partition_size=4)

    def stop_after_two(part_no):
        if part_no == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        scan([rows_path], tmp_path / "cut", spec, workers=1, partition_size=4, on_partition=stop_after_two)
    work = sorted(p.name for p in (tmp_path / "cut" / "_work").iterdir())
    assert work == ["manifest.json", "part-00000.parquet", "part-00001.parquet"]  # no half-written file
    assert not list((tmp_path / "cut").glob("part-*.parquet"))
    resumed = scan([rows_path], tmp_path / "cut", spec, workers=1, partition_size=4)
    assert resumed.partitions_skipped == 2 and resumed.partitions == full.partitions == 4
    assert read_output(tmp_path / "cut").to_pylist() == read_output(tmp_path / "full").to_pylist()
    # another input into the same folder is refused rather than mixed in
    other = write_jsonl(tmp_path / "other.jsonl", DOCS[:2])
    with pytest.raises(scan_mod.InputError, match="other inputs"):
        scan([other], tmp_path / "cut", spec, workers=1, partition_size=4)


def test_families_of_hand_made_copies(tmp_path, spec):
    summary = scan([write_jsonl(tmp_path / "rows.jsonl", DOCS)], tmp_path / "out", spec, workers=1)
    rows = rows_by_id(tmp_path / "out")
    fam = rows["story"]["family_id"]
    assert fam is not None and rows["copy-1"]["family_id"] == fam and rows["copy-2"]["family_id"] == fam
    assert rows["other-1"]["family_id"] is None and rows["other-2"]["family_id"] is None
    assert rows["story"]["family_size"] == 3 and summary.families == 1
    # the likely source is the least-spun member (one that cannot be judged counts as spun)
    least = min(("story", "copy-1", "copy-2"),
                key=lambda i: (1.0 if rows[i]["spin_probability"] is None else rows[i]["spin_probability"],
                               rows[i]["doc_no"]))
    assert rows["copy-1"]["family_source"] == least and rows["copy-1"]["family_source_kind"] == "member"
    # both copies say "price" and "traces" where the story says "cost" and "lines": without the
    # language model's vote the two copies outvote the story; with it, a tie keeps the story's words
    assert rows["story"]["restored"] == STORY
    assert "stated" not in rows["copy-1"]["restored"] and "mentioned" not in rows["copy-2"]["restored"]
    scan([write_jsonl(tmp_path / "rows.jsonl", DOCS)], tmp_path / "no-lm", replace(spec, family_lm_vote=False),
         workers=1)
    assert "would price more" in rows_by_id(tmp_path / "no-lm")["story"]["restored"]


def test_family_linked_to_an_indexed_source(tmp_path, spec, tiny_channel):
    from unspin.index import Index

    index_path = tmp_path / "refs.sqlite"
    with Index(index_path, channel=tiny_channel) as idx:
        idx.add([{"id": "ref-story", "text": STORY}, {"id": "ref-bakery", "text": OTHER_1}])
    spec_ix = ScanSpec(lm=spec.lm, channel=spec.channel, index=str(index_path))
    docs = [("copy-1", COPY_1), ("copy-2", COPY_2), ("comet", OTHER_2)]
    scan([write_jsonl(tmp_path / "rows.jsonl", docs)], tmp_path / "out", spec_ix, workers=1)
    rows = rows_by_id(tmp_path / "out")
    assert rows["copy-1"]["indexed_source"] == "ref-story"
    assert rows["copy-1"]["family_source"] == "ref-story" and rows["copy-1"]["family_source_kind"] == "index"
    assert rows["copy-2"]["family_id"] == rows["copy-1"]["family_id"]
    assert rows["comet"]["family_id"] is None and rows["comet"]["indexed_source"] is None
    # both copies restored from the indexed source's wording
    assert rows["copy-1"]["restored"] == rows["copy-2"]["restored"] == STORY
    assert rows["copy-1"]["family_changes"] >= 8 and rows["copy-2"]["family_changes"] >= 6


def test_hub_document_does_not_chain_families():
    # 0-1-2 and 3-4-5 are two families; document 6 aligns weakly with both (a page quoting two stories)
    edges = [(0, 1, 0.9), (0, 2, 0.9), (1, 2, 0.9), (3, 4, 0.9), (3, 5, 0.9), (4, 5, 0.9),
             (0, 6, 0.5), (3, 6, 0.45)]
    spin = {i: 0.5 for i in range(7)}
    ids = {i: f"d{i}" for i in range(7)}
    unguarded = group_families(edges, {}, spin, ids, max_family=100)
    assert len({id(f) for f in unguarded.values()}) == 1
    guarded = group_families(edges, {}, spin, ids, max_family=4)
    assert guarded[6].family_id == guarded[0].family_id != guarded[3].family_id
    assert sorted(guarded[3].members) == [3, 4, 5]


def test_candidate_pairs_local_and_bag_agree():
    bands = {0: [1, 2, 3, 4], 1: [1, 2, 3, 9], 2: [4, 7], 3: [1, 2, 3, 4], 4: [7, 8]}
    local = scan_mod.candidate_pairs(list(bands), list(bands.values()), min_hits=1)
    bag = scan_mod.candidate_pairs_bag([[(0, bands[0]), (1, bands[1])], [(2, bands[2]), (3, bands[3]), (4, bands[4])]],
                                       min_hits=1, scheduler="sync")
    assert local == bag == {(0, 1): 3, (0, 2): 1, (0, 3): 4, (1, 3): 3, (2, 3): 1, (2, 4): 1}
    # a bucket larger than max_bucket says nothing
    assert scan_mod.candidate_pairs(list(bands), list(bands.values()), max_bucket=2, min_hits=1) == {(2, 4): 1}


def test_local_and_dask_cluster_give_the_same_dataset(tmp_path, spec):
    distributed = pytest.importorskip("distributed")
    docs = [(f"{name}-{k}", text) for k in range(2) for name, text in DOCS]
    rows_path = write_jsonl(tmp_path / "rows.jsonl", docs)
    local = scan([rows_path], tmp_path / "local", spec, workers=1, partition_size=3)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as client:
        remote = scan([rows_path], tmp_path / "dask", spec, scheduler=client, partition_size=3)
    assert read_output(tmp_path / "dask").to_pylist() == read_output(tmp_path / "local").to_pylist()
    assert remote.families == local.families >= 1 and remote.candidate_pairs == local.candidate_pairs


def test_cli_scan_with_report(tmp_path, models, capsys):
    rows_path = write_jsonl(tmp_path / "rows.jsonl", DOCS)
    out = tmp_path / "out"
    assert main(["scan", rows_path, "--out", str(out), "--workers", "2", "--report", *models]) == 0
    err = capsys.readouterr().err
    assert "scanned 5 documents" in err and "1 spin families" in err and "changes restored from their families" in err
    page_html = (out / "report.html").read_text()
    assert page_html.startswith("<!doctype html>") and "Largest spin families" in page_html
    assert "copy-1" in page_html and "Harwick" in page_html
    # the copies' wording restored from the family, the copy's words in the marks' titles
    assert "changes from the family</summary>" in page_html and '<ins title="was: stated">said</ins>' in page_html
    summary = json.loads((out / "summary.json").read_text())
    assert summary["documents"] == 5 and summary["families"] == 1
    # the report alone, from the finished scan
    assert main(["scan", "--out", str(out), "--report", str(tmp_path / "r.html")]) == 0
    assert (tmp_path / "r.html").read_text() == page_html
    assert main(["scan", "--out", str(tmp_path / "nothing"), "--report"]) == 2


def test_bench_pair_scores():
    from unspin.build.bench_scan import pair_scores

    truth = {"s": "g1", "c1": "g1", "c2": "g1", "x": None, "y": None}
    fraction = {"s": 0.0, "c1": 0.1, "c2": 0.4, "x": 0.0, "y": 0.0}
    predicted = {"s": "F0", "c1": "F0", "c2": None, "x": "F0", "y": None}
    scores = pair_scores(truth, predicted, fraction)
    # predicted pairs: (c1,s) true, (s,x) and (c1,x) false; true pairs: (c1,s), (c2,s), (c1,c2)
    assert scores["precision"] == round(1 / 3, 4) and scores["recall"] == round(1 / 3, 4)
    assert scores["recall_by_fraction"] == {"10%": 1.0, "40%": 0.0}


def test_bench_times_commands_run_together_each_with_its_own_cpu():
    from unspin.build.bench_scan import timed_together

    busy = [sys.executable, "-c", "sum(range(3_000_000))"]
    idle = [sys.executable, "-c", "pass"]
    (busy_wall, busy_cpu), (idle_wall, idle_cpu) = timed_together([busy, idle])
    assert busy_cpu > idle_cpu > 0 and busy_wall > 0 and idle_wall > 0
    with pytest.raises(subprocess.CalledProcessError):
        timed_together([idle, [sys.executable, "-c", "raise SystemExit(3)"]])


# One story and three copies, each spun at other words (so that each word is left unspun in two of
# the three): the family restores every copy toward the story, which is not in the corpus.
FAMILY_STORY = ("After the vote the minister said the plan would cost more than the council had hoped, and the "
                "soldiers at the front lines were told to wait for orders. The mayor of Elmbridge said 12 new "
                "buses would run on the river road by April, while the police said the old bridge would stay "
                "closed to trucks. Officials said that more money for the harbour would come later in the year.")
FAMILY_COPIES = [
    ("spun-a", FAMILY_STORY.replace("minister said", "minister stated").replace("the plan would", "the scheme would")
     .replace("the soldiers", "the infantrymen").replace("police said", "police mentioned")),
    ("spun-b", FAMILY_STORY.replace("would cost more", "would price extra").replace("Elmbridge said", "Elmbridge stated")
     .replace("Officials said", "Officials mentioned")),
    ("spun-c", FAMILY_STORY.replace("front lines", "entrance traces").replace("that more money", "that extra money")),
]


def word_errors(text, reference):
    import difflib

    a, b = text.split(), reference.split()
    return sum(max(i2 - i1, j2 - j1) for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b).get_opcodes()
               if op != "equal")


def test_family_restores_each_copy_from_the_others(tmp_path, spec):
    docs = FAMILY_COPIES + [("other-1", OTHER_1), ("other-2", OTHER_2)]
    summary = scan([write_jsonl(tmp_path / "rows.jsonl", docs)], tmp_path / "out", spec, workers=1)
    rows = rows_by_id(tmp_path / "out")
    fam = {rows[i]["family_id"] for i, _ in FAMILY_COPIES}
    assert len(fam) == 1 and None not in fam
    alone = {r["id"]: r for r in pq.read_table(tmp_path / "out" / "_work" / "part-00000.parquet").to_pylist()}
    for doc_id, text in FAMILY_COPIES:
        assert word_errors(text, FAMILY_STORY) >= 3
        restored = rows[doc_id]["restored"]
        # every word spun in one copy is restored from the two others; the decoder alone does less
        assert word_errors(restored, FAMILY_STORY) == 0, restored
        assert word_errors(alone[doc_id]["restored"] or text, FAMILY_STORY) > 0   # None: not judged (tiny LM)
        assert rows[doc_id]["family_changes"] >= 1
    assert summary.family_changes == sum(rows[i]["family_changes"] for i, _ in FAMILY_COPIES)
    # outside a family: the decoder's restoration, no family changes
    assert rows["other-1"]["family_changes"] is None and rows["other-1"]["restored"] == alone["other-1"]["restored"]
    # with the story in the corpus the copies restore toward it too, and the story keeps its words
    out2 = tmp_path / "out2"
    scan([write_jsonl(tmp_path / "rows2.jsonl", [("story", FAMILY_STORY)] + docs)], out2, spec, workers=1)
    rows = rows_by_id(out2)
    assert rows["story"]["restored"] == FAMILY_STORY and rows["story"]["family_changes"] == 0
    assert all(rows[i]["restored"] == FAMILY_STORY for i, _ in FAMILY_COPIES)


def test_sibling_votes_keep_a_word_where_the_copies_disagree(tiny_channel):
    from unspin.detect import Span
    from unspin.fingerprint import Fingerprinter
    from unspin.trace import SubstitutionJudge

    judge = SubstitutionJudge(tiny_channel, Fingerprinter(tiny_channel).canonical)
    base = "The minister {} the plan would cost more than the council had hoped before the vote."

    def copy(i, word, changes=()):
        return scan_mod.FamilyCopy(i, f"c{i}", base.format(word), list(changes))

    def votes(c, siblings):
        return scan_mod.sibling_votes(c, [scan_mod.sibling_views(judge, c, s)[0] for s in siblings])

    said, stated, mentioned = copy(0, "said"), copy(1, "stated"), copy(2, "mentioned")
    # three wordings, one vote each: nothing changes
    assert votes(said, [stated, mentioned]).replacements == []
    assert votes(stated, [said, mentioned]).replacements == []
    # two of three say "said": the third copy is restored, the others keep their wording
    said_2 = copy(2, "said")
    r = votes(stated, [said, said_2])
    assert [stated.text[a:b] for a, b, _ in r.replacements] == ["stated"] and r.replacements[0][2] == "said"
    assert votes(said, [stated, said_2]).replacements == []
    # one alignment serves both copies of a pair
    of_stated, of_said = scan_mod.sibling_views(judge, stated, said)
    assert [w for *_, w in of_stated.wordings] == ["said"] and [w for *_, w in of_said.wordings] == ["stated"]
    # a decoder change that both siblings contradict is overruled; one they support stays
    wrong = Span(13, 17, "said", "stated", 0.9)
    r = votes(copy(0, "said", [wrong]), [said_2, said_2])
    assert r.replacements == [] and (13, 17) in r.segments
    right = Span(13, 19, "stated", "said", 0.9)
    r = votes(copy(1, "stated", [right]), [said, mentioned])
    assert r.replacements == [(13, 19, "said")]


def test_a_member_that_reads_genuine_beside_spun_siblings_keeps_its_words(spec):
    base = "The minister said the plan would cost more than the {} had hoped before the vote."
    story = scan_mod.FamilyCopy(0, "story", base.format("council"), [], 0.03)
    # both copies show the same swap: two votes against the story's one
    copies = [story] + [scan_mod.FamilyCopy(i, f"c{i}", base.format("committee"), [], 0.95) for i in (1, 2)]
    out = scan_mod.restore_families(spec, [(copies, None)])
    assert out[0] == (story.text, 0)
    # the same story, not yet told apart from its copies (they read as genuine too): the family votes on it
    unsure = [replace(c, spin_probability=0.1) for c in copies]
    assert scan_mod.restore_families(spec, [(unsure, None)])[0][1] >= 1
