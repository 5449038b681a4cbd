"""The fingerprint's fast word-frequency lookup must give wordfreq's figures exactly: the index
stores the rare-term keys it selects, and a different figure would change them."""
from wordfreq import get_frequency_dict, zipf_frequency

from unspin.fingerprint import RARE_ZIPF, word_zipf


def test_fast_zipf_agrees_with_wordfreq_on_every_plain_word_it_lists():
    plain = [w for w in get_frequency_dict("en") if w.isascii() and w.isalpha() and w.islower()]
    assert len(plain) > 100_000
    differ = [w for w in plain if word_zipf.__wrapped__(w) != zipf_frequency(w, "en")]
    assert differ == []


def test_fast_zipf_agrees_on_unknown_and_other_words():
    for word in ["qzxwvtplk", "unspinnable", "x", "don't", "co-operate", "naïve", "2024", "U.N"]:
        assert word_zipf.__wrapped__(word) == zipf_frequency(word, "en"), word
    assert word_zipf.__wrapped__("qzxwvtplk") == 0.0 and word_zipf.__wrapped__("the") > RARE_ZIPF
