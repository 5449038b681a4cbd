from unspin.text import (count_rewriter_marks, lm_sentences, match_case, repair_rewriter_marks,
                         sentence_spans, tokenize)


def test_offsets_point_back_into_the_text():
    text = "The mayor’s “plan” costs 4, 000 dollars—or so the café owner said."
    for tok in tokenize(text):
        assert text[tok.start:tok.end] == tok.text


def test_curly_quotes_and_clitics_normalize():
    toks = tokenize("The mayor’s plan")
    assert [t.text for t in toks] == ["The", "mayor", "’s", "plan"]
    assert toks[2].norm == "'s"
    assert toks[0].norm == "the"


def test_unicode_words_stay_whole():
    toks = tokenize("Zoë visited São Paulo and Kraków.")
    assert [t.text for t in toks if t.is_word] == ["Zoë", "visited", "São", "Paulo", "and", "Kraków"]


def test_numbers_keep_their_groups():
    toks = tokenize("It cost 10,000 dollars on the 2nd day, or 3.5 each.")
    numbers = [t.text for t in toks if t.kind == "number"]
    assert numbers == ["10,000", "2nd", "3.5"]


def test_split_thousands_is_a_rewriter_mark_and_is_repaired():
    text = "About 4, 000 people and the U. N. team came."
    marks = count_rewriter_marks(text)
    assert marks["split_thousands"] == 1 and marks["spaced_abbrev"] == 1
    assert repair_rewriter_marks(text) == "About 4,000 people and the U.N. team came."
    assert count_rewriter_marks("About 4,000 people came.")["split_thousands"] == 0


def test_flipped_quote_mark():
    assert count_rewriter_marks("The minister said that” the plan failed.")["flipped_quote"] == 1
    assert count_rewriter_marks('The minister said: "the plan failed."')["flipped_quote"] == 0


def test_sentences_split_but_not_after_abbreviations_or_initials():
    text = "Dr. Smith met J. Brown in the U.S. capital. They talked.\nA new line"
    spans = sentence_spans(text)
    parts = [text[a:b] for a, b in spans]
    assert parts == ["Dr. Smith met J. Brown in the U.S. capital.", "They talked.", "A new line"]


def test_lm_sentences_lowercase_and_tokenize():
    assert list(lm_sentences("The Cat's toy fell. It broke!")) == ["the cat 's toy fell .", "it broke !"]


def test_match_case():
    assert match_case("Said", "stated") == "Stated"
    assert match_case("NASA", "agency") == "AGENCY"
    assert match_case("said", "Stated") == "Stated"
    assert match_case("x", "") == ""


def test_long_runs_without_sentence_ends_are_cut_after_punctuation():
    from unspin.text import sentences, split_long

    text = " ".join(f"word{i % 10}," if i % 7 == 6 else f"word{i % 10}" for i in range(1000))
    pieces = list(sentences(text.replace("word", "item")))
    assert sum(len(p) for p in pieces) == len(tokenize(text.replace("word", "item")))
    assert all(len(p) <= 80 for p in pieces)
    assert all(p[-1].text == "," for p in pieces[:-1])  # cut after a comma, never mid-phrase
    assert split_long(tokenize("a b c"), 80) == [tokenize("a b c")]


def test_runs_of_abbreviations_and_initials_do_not_end_sentences():
    text = "Dr. " * 500 + "Gray met J. K. Lowe. Then they left."
    spans = sentence_spans(text)
    assert len(spans) == 2
    assert text[spans[0][0]:spans[0][1]].endswith("Lowe.") and text[spans[1][0]:spans[1][1]] == "Then they left."


def test_initials_of_a_name_are_no_rewriter_mark():
    assert count_rewriter_marks("The report was written by K. T. Varanasi last year.")["spaced_abbrev"] == 0
    assert count_rewriter_marks("The poems of W. B. Q. Hollander were read.")["spaced_abbrev"] == 0
    # The same spacing inside a body's name is a mark, whatever follows.
    assert count_rewriter_marks("The U. S. Senate voted late.")["spaced_abbrev"] == 1
    assert count_rewriter_marks("Troops of the U. N. arrived.")["spaced_abbrev"] == 1


def test_number_lists_and_closed_quotations_are_no_rewriter_marks():
    assert count_rewriter_marks("Rooms 214, 216, 218 and 220 were painted.")["split_thousands"] == 0
    assert count_rewriter_marks("Sales rose 312, 415 and 90% in three years.")["split_thousands"] == 0
    assert count_rewriter_marks("Roughly 7, 500 fans waited outside.")["split_thousands"] == 1
    # A quotation that opened shortly before is closed, not flipped.
    assert count_rewriter_marks('The sign read "keep out of" the yard, she said.')["flipped_quote"] == 0
    assert count_rewriter_marks("The mayor said that” the bridge would reopen.")["flipped_quote"] == 1
