"""akko_ai_sentiment: VADER compound sentiment of a memo in [-1, 1], standard library only.

A close port of ``SentimentIntensityAnalyzer.polarity_scores(text)["compound"]`` from
vaderSentiment 3.3.2 (MIT, Copyright (c) 2016 C.J. Hutto; lexicon and license text in
``_vader_lexicon.py``), kept rule for rule -- quirks included -- so a test can require equal
results. Rules: lexicon valence, negation (3-word window, "n't", "no", "never so", "without
doubt", "least"), booster/dampener words, ALL-CAPS emphasis, "but" shifts, special idioms,
"!"/"?" emphasis, emoji -> description, normalisation score/sqrt(score^2 + 15).

Trino's Python UDF sandbox allows only the standard library; trino_sql.py inlines the lexicon
module in place of the import marked below.
"""

import math
import string

from trino_udfs._vader_lexicon import EMOJI, LEXICON  # trino_sql: inline _vader_lexicon

MAX_CHARS = 2000  # memos longer than this are scored on their first 2000 characters (bounded work)

B_INCR = 0.293
B_DECR = -0.293
C_INCR = 0.733
N_SCALAR = -0.74

NEGATE = frozenset([
    "aint", "arent", "cannot", "cant", "couldnt", "darent", "didnt", "doesnt",
    "ain't", "aren't", "can't", "couldn't", "daren't", "didn't", "doesn't",
    "dont", "hadnt", "hasnt", "havent", "isnt", "mightnt", "mustnt", "neither",
    "don't", "hadn't", "hasn't", "haven't", "isn't", "mightn't", "mustn't",
    "neednt", "needn't", "never", "none", "nope", "nor", "not", "nothing", "nowhere",
    "oughtnt", "shant", "shouldnt", "uhuh", "wasnt", "werent",
    "oughtn't", "shan't", "shouldn't", "uh-uh", "wasn't", "weren't",
    "without", "wont", "wouldnt", "won't", "wouldn't", "rarely", "seldom", "despite"])

_BOOST = ("absolutely amazingly awfully completely considerable considerably decidedly deeply "
          "effing enormous enormously entirely especially exceptional exceptionally extreme "
          "extremely fabulously flipping flippin frackin fracking fricking frickin frigging "
          "friggin fully fuckin fucking fuggin fugging greatly hella highly hugely incredible "
          "incredibly intensely major majorly more most particularly purely quite really "
          "remarkably so substantially thoroughly total totally tremendous tremendously uber "
          "unbelievably unusually utter utterly very")
_DAMPEN = ("almost barely hardly kinda kindof kind-of less little marginal marginally occasional "
           "occasionally partly scarce scarcely slight slightly somewhat sorta sortof sort-of")
BOOSTER_DICT = {word: B_INCR for word in _BOOST.split()}
BOOSTER_DICT.update({word: B_DECR for word in _DAMPEN.split()})
BOOSTER_DICT.update({"just enough": B_DECR, "kind of": B_DECR, "sort of": B_DECR})

SPECIAL_CASES = {"the shit": 3, "the bomb": 3, "bad ass": 1.5, "badass": 1.5, "bus stop": 0.0,
                 "yeah right": -2, "kiss of death": -1.5, "to die for": 3, "beating heart": 3.5}


def _negated(word):
    return word in NEGATE or "n't" in word


def _strip_punc_if_word(token):
    stripped = token.strip(string.punctuation)
    return token if len(stripped) <= 2 else stripped  # short leftovers were emoticons: keep


def _replace_emoji(text):
    out = []
    prev_space = True
    for ch in text:
        if ch in EMOJI:
            if not prev_space:
                out.append(" ")
            out.append(EMOJI[ch])
            prev_space = False
        else:
            out.append(ch)
            prev_space = ch == " "
    return "".join(out).strip()


def _scalar_inc_dec(word, valence, is_cap_diff):
    scalar = 0.0
    word_lower = word.lower()
    if word_lower in BOOSTER_DICT:
        scalar = BOOSTER_DICT[word_lower]
        if valence < 0:
            scalar *= -1
        if word.isupper() and is_cap_diff:
            scalar = scalar + C_INCR if valence > 0 else scalar - C_INCR
    return scalar


def _negation_check(valence, low, start_i, i):
    if start_i == 0:
        if _negated(low[i - 1]):
            valence = valence * N_SCALAR
    elif start_i == 1:
        if low[i - 2] == "never" and low[i - 1] in ("so", "this"):
            valence = valence * 1.25
        elif low[i - 2] == "without" and low[i - 1] == "doubt":
            pass
        elif _negated(low[i - 2]):
            valence = valence * N_SCALAR
    else:
        # Operator precedence exactly as in VADER: (never and so/this) or (so/this right before).
        if (low[i - 3] == "never" and low[i - 2] in ("so", "this")) or low[i - 1] in ("so", "this"):
            valence = valence * 1.25
        elif low[i - 3] == "without" and (low[i - 2] == "doubt" or low[i - 1] == "doubt"):
            pass
        elif _negated(low[i - 3]):
            valence = valence * N_SCALAR
    return valence


def _special_idioms_check(valence, low, i):
    onezero = f"{low[i - 1]} {low[i]}"
    twoonezero = f"{low[i - 2]} {low[i - 1]} {low[i]}"
    twoone = f"{low[i - 2]} {low[i - 1]}"
    threetwoone = f"{low[i - 3]} {low[i - 2]} {low[i - 1]}"
    threetwo = f"{low[i - 3]} {low[i - 2]}"
    for seq in (onezero, twoonezero, twoone, threetwoone, threetwo):
        if seq in SPECIAL_CASES:
            valence = SPECIAL_CASES[seq]
            break
    if len(low) - 1 > i and f"{low[i]} {low[i + 1]}" in SPECIAL_CASES:
        valence = SPECIAL_CASES[f"{low[i]} {low[i + 1]}"]
    if len(low) - 1 > i + 1 and f"{low[i]} {low[i + 1]} {low[i + 2]}" in SPECIAL_CASES:
        valence = SPECIAL_CASES[f"{low[i]} {low[i + 1]} {low[i + 2]}"]
    for n_gram in (threetwoone, threetwo, twoone):
        if n_gram in BOOSTER_DICT:
            valence = valence + BOOSTER_DICT[n_gram]
    return valence


def _least_check(valence, low, i):
    if i > 1 and low[i - 1] not in LEXICON and low[i - 1] == "least":
        if low[i - 2] != "at" and low[i - 2] != "very":
            valence = valence * N_SCALAR
    elif i > 0 and low[i - 1] not in LEXICON and low[i - 1] == "least":
        valence = valence * N_SCALAR
    return valence


def _word_valence(words, low, i, is_cap_diff):
    item, item_lower = words[i], low[i]
    valence = LEXICON[item_lower]
    if item_lower == "no" and i != len(words) - 1 and low[i + 1] in LEXICON:
        valence = 0.0  # "no" negates the next lexicon word instead of scoring itself
    if (i > 0 and low[i - 1] == "no") or (i > 1 and low[i - 2] == "no") or (
            i > 2 and low[i - 3] == "no" and low[i - 1] in ("or", "nor")):
        valence = LEXICON[item_lower] * N_SCALAR
    if item.isupper() and is_cap_diff:
        valence = valence + C_INCR if valence > 0 else valence - C_INCR
    for start_i in range(3):
        if i > start_i and low[i - (start_i + 1)] not in LEXICON:
            s = _scalar_inc_dec(words[i - (start_i + 1)], valence, is_cap_diff)
            if start_i == 1 and s != 0:
                s = s * 0.95
            if start_i == 2 and s != 0:
                s = s * 0.9
            valence = valence + s
            valence = _negation_check(valence, low, start_i, i)
            if start_i == 2:
                valence = _special_idioms_check(valence, low, i)
    return _least_check(valence, low, i)


def _but_check(low, sentiments):
    if "but" in low:
        bi = low.index("but")
        # VADER looks each value up with list.index (first equal value), not by position;
        # kept for parity with the reference implementation.
        for k in range(len(sentiments)):
            sentiment = sentiments[k]
            si = sentiments.index(sentiment)
            if si < bi:
                sentiments[si] = sentiment * 0.5
            elif si > bi:
                sentiments[si] = sentiment * 1.5
    return sentiments


def _punctuation_emphasis(text):
    ep_amplifier = min(text.count("!"), 4) * 0.292
    qm_count = text.count("?")
    qm_amplifier = 0
    if qm_count > 1:
        qm_amplifier = qm_count * 0.18 if qm_count <= 3 else 0.96
    return ep_amplifier + qm_amplifier


def compound(text):
    """VADER's compound score of ``text`` (rounded to 4 decimals, as VADER reports it)."""
    text = _replace_emoji(text)
    words = [_strip_punc_if_word(token) for token in text.split()]
    low = [word.lower() for word in words]
    n_caps = sum(1 for word in words if word.isupper())
    is_cap_diff = 0 < len(words) - n_caps < len(words)  # some, but not all, words in ALL CAPS
    sentiments = []
    for i, item_lower in enumerate(low):
        if item_lower in BOOSTER_DICT or (
                i < len(low) - 1 and item_lower == "kind" and low[i + 1] == "of"):
            sentiments.append(0)
        elif item_lower in LEXICON:
            sentiments.append(_word_valence(words, low, i, is_cap_diff))
        else:
            sentiments.append(0)
    sentiments = _but_check(low, sentiments)
    if not sentiments:
        return 0.0
    sum_s = float(sum(sentiments))
    amplifier = _punctuation_emphasis(text)
    if sum_s > 0:
        sum_s += amplifier
    elif sum_s < 0:
        sum_s -= amplifier
    score = sum_s / math.sqrt(sum_s * sum_s + 15)
    return round(min(1.0, max(-1.0, score)), 4)


def akko_ai_sentiment(memo):
    """SQL ``akko_ai_sentiment(memo varchar) -> double``: NULL -> NULL, '' -> 0.0, never raises."""
    if memo is None or not isinstance(memo, str):
        return None
    try:
        return compound(memo[:MAX_CHARS])
    except Exception:  # never raise inside SQL
        return None
