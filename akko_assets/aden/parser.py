"""The deterministic semantic parser: a question -> a Plan -> one SELECT over the curated layer.

A small grammar, one table per concept, applied in this order (each stage blanks the span it
consumed so the next one cannot misread it):

1. time range        (timerange.py: "last week", "in November", "between ... and ...")
2. comparisons       COMPARISON: "above 5 %", "more than 1000 EUR", "at least 3"
3. ranking           RANKING: "top 3", "bottom 2", "highest", "fewest"
4. catalog mentions  metric / dimension / value / time-grain / flag phrases from the catalog,
                     longest phrase first, non-overlapping
5. checks            unknown values ("in Atlantis", "Novembr"), out-of-model terms

and then decides the shape: an aggregate (metrics x dimensions, optional HAVING and ordering) or a
row listing. Anything it cannot place is refused with what the model knows, never guessed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from akko_assets.aden.errors import Refusal
from akko_assets.aden.timerange import (
    MONTHS,
    NUMBER_WORDS,
    TimeError,
    TimeRange,
    find_time_range,
)

MAX_QUESTION_CHARS = 500

# --- grammar tables --------------------------------------------------------------------------------

OPERATORS: list[tuple[str, str]] = [
    (r"at\s+least|no\s+less\s+than|not\s+less\s+than|(?:a\s+)?minimum\s+of|>=|≥", ">="),
    (r"at\s+most|no\s+more\s+than|not\s+more\s+than|up\s+to|(?:a\s+)?maximum\s+of|<=|≤", "<="),
    ((r"above|over|greater\s+than|more\s+than|higher\s+than|larger\s+than|bigger\s+than|exceeding|exceed(?:s|ed)?|"
      r"surpass(?:es|ed|ing)?|topp(?:ed|ing)|in\s+excess\s+of|beyond|>"), ">"),
    (r"below|under|less\s+than|lower\s+than|smaller\s+than|fewer\s+than|<", "<"),
    (r"equal\s+to|equals|exactly|=", "="),
]
_OP_RE = "|".join(f"(?:{alternatives})" for alternatives, _ in OPERATORS)
COMPARISON = re.compile(
    r"(?:(?P<verb>is|was|are|were|be|of|with|had|has|have)\s+)?(?:strictly\s+)?(?P<op>" + _OP_RE + r")\s*"
    r"(?P<cur1>€|\$|eur\b|usd\b)?\s*(?P<num>-?\d[\d,]*(?:\.\d+)?|-?\.\d+)\s*"
    r"(?P<unit>%|percent\b|pct\b|per\s*cent\b|k\b|thousand\b|m\b|mn\b|million\b|eur\b|euros?\b|usd\b|dollars?\b|€|\$)?"
)
CURRENCIES = {"€": "EUR", "eur": "EUR", "euro": "EUR", "euros": "EUR", "$": "USD", "usd": "USD",
              "dollar": "USD", "dollars": "USD"}
SCALE = {"k": 1e3, "thousand": 1e3, "m": 1e6, "mn": 1e6, "million": 1e6}

_NUM_WORD = r"\d{1,4}|" + "|".join(w for w in NUMBER_WORDS if len(w) > 2)
DESC_WORDS = r"highest|largest|biggest|most|greatest|maximum|max|top|worst|riskiest|heaviest|busiest|leading"
ASC_WORDS = r"lowest|smallest|least|fewest|minimum|min|bottom|quietest|safest"
RANKING: list[tuple[re.Pattern[str], bool]] = [  # (pattern with optional group n, descending)
    (re.compile(r"\btop\s+(?P<n>" + _NUM_WORD + r")\b"), True),
    (re.compile(r"\bbottom\s+(?P<n>" + _NUM_WORD + r")\b"), False),
    (re.compile(r"\b(?P<n>" + _NUM_WORD + r")\s+(?:" + DESC_WORDS + r")\b"), True),
    (re.compile(r"\b(?P<n>" + _NUM_WORD + r")\s+(?:" + ASC_WORDS + r")\b"), False),
    (re.compile(r"\b(?:" + DESC_WORDS + r")\b"), True),
    (re.compile(r"\b(?:" + ASC_WORDS + r")\b"), False),
]
# Words right before a dimension that make it a GROUP BY ("by region", "which channels").
GROUP_TRIGGER = re.compile(
    r"(?:\bby|\bper|\bin\s+terms\s+of|\beach|\bevery|\bacross(?:\s+all)?|\bamong|\bwhich|\bwhat|\bbreakdown\s+by|\bbroken\s+down\s+by|"
    r"\bsplit\s+by|\bgrouped\s+by|\bfor\s+all|\ball|\bdifferent|\bvarious|\bthe\s+\d+|\btop\s+\d+|\bbottom\s+\d+|"
    r"\b\d+|\bthe)\s+(?:(?:" + DESC_WORDS + "|" + ASC_WORDS + r")\s+)?$"
)
TREND = re.compile(r"\b(?:trend|trends|over\s+time|evolution|evolve[ds]?|timeline|time\s+series|developed?|history)\b")
HOW_MUCH = re.compile(r"\bhow\s+much\b")
# "which 3 countries had the most ...": the count sits apart from the superlative.
RANK_COUNT = re.compile(r"\b(?:which|what|the|list|show|give\s+me)\s+(?P<n>" + _NUM_WORD + r")\s+[a-z]")
COUNT_WORDS = re.compile(r"\b(?:how\s+many|number\s+of|count(?:\s+of)?|total\s+number|tally)\b")
LIST_WORDS = re.compile(r"^(?:please\s+)?(?:show|list|display|give|find|get|fetch|return|print|which|what)\b|\b(?:show|list)\s+(?:me\s+)?")
NEGATION = re.compile(r"(?:\bexcept|\bexcluding|\bexclude|\boutside(?:\s+of)?|\bother\s+than|\bnot(?:\s+in)?|\bnon-?|\bbut\s+not|\bwithout)\s*(?:the\s+)?$")
# Columns a listing may ask for by name; card numbers and names are PII (masked by governance).
LIST_COLUMNS: list[tuple[str, str]] = [
    (r"card\s+numbers?|card\s+pans?|pans?|credit\s+card\s+numbers?|card\s+no", "card_pan"),
    (r"(?:customer|card\s*holder|client)?\s*names?|who", "customer_name"),
    (r"memos?|notes?|descriptions?", "memo"),
    (r"customer\s+ids?", "customer_id"),
]
DEFAULT_LIST_COLUMNS = ("transaction_id", "ts", "customer_id", "merchant", "merchant_category", "channel",
                        "region", "country", "amount", "currency", "fraud_score", "is_flagged")
# Business-sounding things the model does not have: refuse rather than answer something else.
OUT_OF_MODEL = re.compile(
    r"\b(?:loans?|mortgages?|deposits?|balances?|interest\s+rates?|credit\s+scores?|credit\s+limits?|salar(?:y|ies)|"
    r"employees?|staff|branch(?:es)?|profits?|revenue|stocks?|share\s+price|weather|ages?|gender|income|"
    r"addresse?s?|e-?mails?|phone(?:\s+numbers?)?|passwords?|chargebacks?|disputes?|refunds?|exchange\s+rates?|"
    r"bitcoin|crypto|cvv|pin\s+codes?|expiry|social\s+security|ssn|ip\s+address(?:es)?|devices?|browsers?|"
    r"marketing|campaigns?|churn|nps|satisfaction)\b"
)
FUTURE = re.compile(r"\b(?:predict|prediction|forecast|will\s+be|will\s+there|next\s+(?:week|month|year|quarter|days?)|"
                    r"tomorrow|going\s+to|expected\s+to|estimate\s+future)\b")
GROUND_TRUTH = re.compile(r"\b(?:actual|confirmed|true|real|ground[\s-]*truth|labell?ed|verified|proven)\s+(?:fraud|frauds|fraudulent)\b|\bis_fraud\b")
WHY = re.compile(r"^\s*(?:why|how\s+come|explain\s+why|what\s+caused)\b")
UNKNOWN_AFTER = re.compile(r"\b(?:region|country|channel|category|status)\s+(?:of\s+|called\s+|named\s+)?['\"]?(?P<word>[A-Za-z][\w-]*)")
UNKNOWN_BEFORE = re.compile(r"\b(?:in|from|for)\s+(?:the\s+)?['\"]?(?P<word>[A-Za-z][\w-]*)['\"]?\s+(?P<dim>region|country|channel|category)\b")
# "in <word>" / "from <word>" must name something known (a value, a month, a phrase of the grammar).
PLACE_LIKE = re.compile(r"\b(?:in|from|within|inside)\s+(?:the\s+)?(?P<word>[a-z][a-z-]*)\b")
PLACE_OK = frozenset({"total", "terms", "general", "aggregate", "average", "particular", "detail", "sum", "short",
                      "order", "descending", "ascending", "each", "every", "all", "any", "our", "my", "which", "what",
                      "data", "dataset", "system", "lakehouse", "period", "range", "window", "time", "question",
                      "accounts", "account", "transactions", "payments", "purchases", "customers", "amount",
                      "amounts", "percent", "percentage", "euros", "dollars", "cash"})
MONTH_LIKE = re.compile(r"\b(?:in|during|for|since|of)\s+(?P<word>[a-z]{3,})\b")
STOPWORDS = frozenset(
    ["a", "an", "the", "and", "or", "of", "in", "on", "at", "by", "for", "to", "with", "without", "from", "per", "is", "are", "was", "were", "be", "been", "has", "have", "had", "do", "does", "did", "saw", "see", "seen", "show", "shows", "showed", "list", "what", "which", "who", "whose", "how", "many", "much", "that", "this", "these", "those", "where", "when", "there", "their", "its", "it", "as", "than", "then", "over", "under", "above", "below", "more", "less", "most", "least", "top", "bottom", "highest", "lowest", "each", "every", "all", "any", "some", "no", "not", "only", "please", "me", "my", "we", "our", "us", "you", "your", "i", "they", "them", "between", "since", "during", "across", "among", "into", "had", "has", "recorded", "registered", "experienced", "reported", "got", "get", "gets", "value", "values", "level", "levels", "breakdown", "split", "grouped", "rate", "wise", "excluding", "exclude", "except", "outside", "including", "only", "versus", "vs", "compared", "where", "whose", "name", "names", "made", "make", "makes", "had", "saw"]
)
# Capitalised words that are not data values (sentence starts, units, acronyms of the domain).
NOT_VALUES = frozenset({"I", "EUR", "USD", "ISO", "ATM", "ATMs", "POS", "ADEN", "AKKO", "PAN", "PANs", "ID", "IDs",
                        "SQL", "OK", "UTC", "MCC", "MTD", "YTD", "WTD", "TOP", "Top"})


# --- the plan ------------------------------------------------------------------------------------------


@dataclass
class Mention:
    kind: str  # metric | dimension | value | grain | flag | unflag
    key: str  # metric / dimension / grain name
    start: int
    end: int
    phrase: str
    value: str | None = None
    weak: bool = False  # a bare noun ("transactions", "amount") that only counts when nothing stronger is there


@dataclass
class Comparison:
    verb: str | None  # "is/was/..." before the operator: compares an aggregate, not a row value
    op: str
    number: float
    percent: bool
    currency: str | None
    start: int
    end: int
    text: str


@dataclass
class Condition:
    target: str  # metric name (aggregate) or column (row level)
    op: str
    value: float
    text: str


@dataclass
class Plan:
    kind: str  # "aggregate" | "list"
    table: str
    metrics: list[str] = field(default_factory=list)
    dimensions: list[str] = field(default_factory=list)  # dimension or grain names, in output order
    filters: list[str] = field(default_factory=list)  # SQL predicates
    filter_text: list[str] = field(default_factory=list)  # the same, in words, for the answer
    having: list[Condition] = field(default_factory=list)
    checks: list[Condition] = field(default_factory=list)  # comparisons on a scalar answer (yes/no)
    order: tuple[str, bool] | None = None  # (output column, descending)
    limit: int | None = None
    time_range: TimeRange | None = None
    columns: list[str] = field(default_factory=list)  # listing columns
    question: str = ""


# --- lexicon ------------------------------------------------------------------------------------------


WEAK_METRIC_PHRASES = frozenset({"transactions", "payments", "purchases", "txns", "amount", "amounts", "customers",
                                 "clients", "cardholders", "card holders", "fraud score", "risk score", "anomaly score",
                                 "sentiment", "volume", "spend", "spending"})
ROW_LEVEL_PHRASES = {"amount": "amount", "amounts": "amount", "fraud score": "fraud_score", "risk score": "fraud_score",
                     "anomaly score": "fraud_score", "sentiment": "memo_sentiment", "memo sentiment": "memo_sentiment",
                     "transactions": "amount", "payments": "amount", "purchases": "amount", "txns": "amount"}


@dataclass(frozen=True)
class Lexicon:
    entries: tuple[tuple[re.Pattern[str], bool, Mention], ...]  # (pattern, case_sensitive, template)


def _phrase_pattern(phrase: str) -> str:
    words = [re.escape(w) for w in phrase.split()]
    return r"(?<![\w-])" + r"[\s-]+".join(words) + r"(?![\w-])"


def build_lexicon(model: Mapping[str, Any]) -> Lexicon:
    entries: list[tuple[str, bool, Mention]] = []
    for name, metric in model["metrics"].items():
        for phrase in metric["synonyms"]:
            entries.append((phrase, False, Mention("metric", name, 0, 0, phrase, weak=phrase in WEAK_METRIC_PHRASES)))
    for name, dim in model["dimensions"].items():
        for phrase in dim["synonyms"]:
            entries.append((phrase, False, Mention("dimension", name, 0, 0, phrase)))
        for value, synonyms in (dim.get("value_synonyms") or {}).items():
            if dim.get("case_sensitive_codes"):
                entries.append((value, True, Mention("value", name, 0, 0, value, value=value)))
            else:
                entries.append((value.lower().replace("_", " "), False, Mention("value", name, 0, 0, value, value=value)))
            for phrase in synonyms:
                entries.append((phrase, False, Mention("value", name, 0, 0, phrase, value=value)))
    for name, grain in model["time_grains"].items():
        for phrase in grain["synonyms"]:
            entries.append((phrase, False, Mention("grain", name, 0, 0, phrase)))
    flag = model["flag_filter"]
    for phrase in flag["synonyms"]:
        entries.append((phrase, False, Mention("flag", "is_flagged", 0, 0, phrase)))
    for phrase in flag["negated"]:
        entries.append((phrase, False, Mention("unflag", "is_flagged", 0, 0, phrase)))
    # Longest phrase first, so "fraud rate" beats "fraud" and "south africa" beats "africa".
    entries.sort(key=lambda e: -len(e[0]))
    compiled = tuple((re.compile(_phrase_pattern(p)), cs, m) for p, cs, m in entries)
    return Lexicon(compiled)


@lru_cache(maxsize=8)
def _cached_lexicon(model_json: str) -> Lexicon:
    return build_lexicon(json.loads(model_json))


def lexicon_for(catalog: Mapping[str, Any]) -> Lexicon:
    """The lexicon of a catalog, built once per distinct semantic model."""
    return _cached_lexicon(json.dumps(catalog["semantic_model"], sort_keys=True))


def find_mentions(lower: str, original: str, lexicon: Lexicon) -> list[Mention]:
    taken = [False] * len(lower)
    found: list[Mention] = []
    for pattern, case_sensitive, template in lexicon.entries:
        for match in pattern.finditer(original if case_sensitive else lower):
            s, e = match.span()
            if any(taken[s:e]):
                continue
            for i in range(s, e):
                taken[i] = True
            found.append(dataclasses.replace(template, start=s, end=e))
    return sorted(found, key=lambda m: m.start)


# --- helpers ------------------------------------------------------------------------------------------


def _blank(text: str, span: tuple[int, int]) -> str:
    s, e = span
    return text[:s] + " " * (e - s) + text[e:]


def normalize(question: str) -> str:
    text = unicodedata.normalize("NFKC", question)
    text = text.replace("’", "'").replace("‘", "'").replace("“", '"').replace("”", '"')
    return " ".join(text.split()).rstrip("?!. ")


def _number(raw: str) -> int:
    return NUMBER_WORDS[raw] if raw in NUMBER_WORDS else int(raw)


def _sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _known_values(model: Mapping[str, Any]) -> str:
    parts = []
    for dim in model["dimensions"].values():
        if dim.get("values"):
            parts.append(f"{dim['label']}: {', '.join(dim['values'])}")
    return "; ".join(parts)


def known_summary(model: Mapping[str, Any]) -> str:
    metrics = ", ".join(m["label"] for m in model["metrics"].values())
    dims = ", ".join(d["label"] for d in model["dimensions"].values())
    return (f"I can answer questions about these metrics: {metrics}; by these dimensions: {dims}, day, week or "
            f"month; over time ranges such as 'last week', 'in November' or 'last 30 days'")


# --- the parser ----------------------------------------------------------------------------------------


def _comparisons(lower: str) -> tuple[list[Comparison], str]:
    found = []
    for match in COMPARISON.finditer(lower):
        op = next(symbol for alternatives, symbol in OPERATORS if re.fullmatch(alternatives, match.group("op")))
        number = float(match.group("num").replace(",", ""))
        unit = (match.group("unit") or "").strip()
        currency = CURRENCIES.get((match.group("cur1") or "").strip()) or CURRENCIES.get(unit)
        percent = unit in ("%", "percent", "pct") or unit.replace(" ", "") == "percent"
        number *= SCALE.get(unit, 1.0)
        verb = match.group("verb")
        if re.match(r"exceed|surpass|topp", match.group("op")):
            verb = "is"
        found.append(Comparison(verb, op, number, percent, currency, match.start(), match.end(), match.group(0).strip()))
    for comparison in found:
        lower = _blank(lower, (comparison.start, comparison.end))
    return found, lower


def _ranking(lower: str) -> tuple[tuple[bool, int | None, int] | None, str]:
    """(descending, n, position) of the first ranking phrase."""
    best = None
    for pattern, descending in RANKING:
        match = pattern.search(lower)
        if match and (best is None or match.start() < best[0].start()):
            best = (match, descending)
    if best is None:
        return None, lower
    match, descending = best
    n = _number(match.group("n")) if "n" in match.groupdict() and match.group("n") else None
    if n is None:
        counted = RANK_COUNT.search(lower)
        if counted:
            n = _number(counted.group("n"))
            lower = _blank(lower, counted.span("n"))
    if n is not None and not 1 <= n <= 1000:
        raise Refusal(f"'{match.group(0)}' asks for {n} rows: ask for 1 to 1000")
    return (descending, n, match.start()), _blank(lower, match.span())


def _check_unknown_values(original: str, lower: str, mentions: list[Mention], model: Mapping[str, Any]) -> None:
    """Refuse words that look like data values but are none (typos, made-up regions, people)."""
    covered = [False] * len(original)
    for m in mentions:
        for i in range(m.start, m.end):
            covered[i] = True
    known = _known_values(model)

    def uncovered(match: re.Match[str], group: str | int = "word") -> bool:
        s, e = match.span(group)
        return not any(covered[s:e])

    for pattern in (UNKNOWN_AFTER, UNKNOWN_BEFORE):
        for match in pattern.finditer(original):
            word = match.group("word")
            if uncovered(match) and word.lower() not in STOPWORDS and not word.isdigit():
                dim = match.groupdict().get("dim") or re.match(r"\w+", match.group(0)).group(0).lower()
                raise Refusal(f"unknown {dim} '{word}': known values are {known}")
    for match in MONTH_LIKE.finditer(lower):
        word = match.group("word")
        if word in MONTHS or not uncovered(match):
            continue
        close = difflib.get_close_matches(word, [m for m in MONTHS if len(m) > 3], n=1, cutoff=0.75)
        if close:
            raise Refusal(f"unknown month '{word}' (did you mean {close[0].capitalize()}?)")
    for match in re.finditer(r"(?<!\w)\d[\d.,]*", lower):
        if uncovered(match, 0):
            raise Refusal(f"I don't know what '{match.group(0)}' refers to: numbers can be dates, thresholds "
                          "('above 5 %', 'more than 1000 EUR') or counts ('top 3')")
    for match in PLACE_LIKE.finditer(lower):
        word = match.group("word")
        if uncovered(match) and word not in STOPWORDS and word not in PLACE_OK and word not in MONTHS:
            raise Refusal(f"unknown value '{word}': it is not a known region, country, channel, category or status "
                          f"({known})")
    # Capitalised words or codes not at the start of the question, and quoted strings.
    for match in re.finditer(r"(?<=\s)(?P<word>[A-Z][\w-]*)|['\"](?P<quoted>[^'\"]{1,40})['\"]", original):
        group = "word" if match.group("word") else "quoted"
        word = match.group(group)
        if not uncovered(match, group) or word in NOT_VALUES or word.lower() in STOPWORDS:
            continue
        if word.lower() in MONTHS:
            continue
        raise Refusal(f"unknown value '{word}': it is not a known region, country, channel, category or status "
                      f"({known})")


def _attach(comparison: Comparison, mentions: list[Mention], lower: str) -> Mention | None:
    """The metric or measure a comparison is about: the mention right after it ("more than 10
    transactions"), else the nearest one before it in the same clause ("fraud rate above 5 %")."""
    after = [m for m in mentions if m.kind == "metric" and 0 <= m.start - comparison.end <= 2]
    if after:
        return after[0]
    before = [m for m in mentions if m.kind == "metric" and m.end <= comparison.start]
    for m in reversed(before):
        between = lower[m.end:comparison.start]
        if re.search(r"[,;]|\b(?:and|but)\b", between) and len(between.split()) > 4:
            break
        return m
    return None


def parse(question: str, catalog: Mapping[str, Any], as_of: dt.date) -> Plan:
    """The Plan for `question`, or Refusal with the reason."""
    model = catalog["semantic_model"]
    original = normalize(question)
    lower = original.lower()
    if len(lower) != len(original):  # a few Unicode letters change length when lower-cased
        original = lower

    if GROUND_TRUTH.search(lower):
        raise Refusal("the ground-truth fraud label is kept for model evaluation only; ask about flagged "
                      "transactions (the fraud model's flags) or the fraud rate instead")
    if FUTURE.search(lower):
        raise Refusal(f"I only report recorded data up to {as_of.isoformat()}, not forecasts. " + known_summary(model))
    if WHY.search(lower):
        raise Refusal("I report what the data shows, not causes. " + known_summary(model))
    out_of_model = OUT_OF_MODEL.search(lower)
    if out_of_model:
        raise Refusal(f"'{out_of_model.group(0)}' is not in the semantic model. " + known_summary(model))

    try:
        time_range, span = find_time_range(lower, as_of)
    except TimeError as exc:
        raise Refusal(str(exc)) from None
    if span:
        lower, original = _blank(lower, span), _blank(original, span)
    comparisons, lower = _comparisons(lower)
    for c in comparisons:
        original = _blank(original, (c.start, c.end))
    pre_rank = lower
    ranking, lower = _ranking(lower)
    mentions = find_mentions(lower, original, lexicon_for(catalog))
    _check_unknown_values(original, lower, mentions, model)

    plan = Plan(kind="aggregate", table=model["fact_table"], time_range=time_range, question=question)
    _add_value_filters(plan, mentions, lower, model)
    _add_group_by(plan, mentions, pre_rank, lower, ranking, model)

    flag = next((m for m in mentions if m.kind in ("flag", "unflag")), None)
    # "customers" after a group trigger is the customer dimension, not the count of customers.
    metric_mentions = [m for m in mentions if m.kind == "metric"
                       and not (m.key == "customers" and m.weak and "customer" in plan.dimensions)]
    row_conditions, metric_conditions = _split_comparisons(plan, comparisons, metric_mentions, lower, model)

    # Which metrics: strong mentions first; bare nouns only when nothing stronger is there.
    strong = [m.key for m in metric_mentions if not m.weak]
    weak = [m.key for m in metric_mentions if m.weak]
    metrics = list(dict.fromkeys(strong or weak[:1]))
    if not metrics and metric_conditions:
        metrics = [metric_conditions[0].target]
    if not metrics and COUNT_WORDS.search(lower):
        metrics = ["transactions"]
    if not strong and HOW_MUCH.search(lower):
        metrics = ["total_amount"]  # "how much did customers spend": an amount, whatever noun comes first

    wants_columns = _requested_columns(lower)
    # A listing names transactions (or columns of them) with a show/list/which verb and no aggregate.
    is_listing = (
        not plan.dimensions
        and not [k for k in strong if k not in ("transactions", "flagged_transactions")]
        and not COUNT_WORDS.search(lower)
        and not metric_conditions
        and (bool(LIST_WORDS.search(lower)) or bool(wants_columns) or ranking is not None
             or (bool(row_conditions) and not metrics))
        and (bool(wants_columns) or re.search(r"\btransactions?\b|\bpayments?\b|\bpurchases?\b", lower) is not None)
    )
    if is_listing:
        if flag is None:
            flag = next((m for m in mentions if m.kind == "metric" and m.key == "flagged_transactions"), None)
            flag = dataclasses.replace(flag, kind="flag") if flag else None
        return _listing(plan, flag, row_conditions, ranking, wants_columns, pre_rank)

    if not metrics:
        raise Refusal("I could not find a metric in the question. " + known_summary(model))

    # A flag word next to another metric filters ("average amount of flagged transactions"); next to
    # a bare count it is the flagged count ("how many transactions were flagged").
    flagged_filter = False
    if "flagged_transactions" in metrics and len(metrics) > 1 and "fraud_rate" not in metrics:
        metrics.remove("flagged_transactions")
        flagged_filter = True
    if flag is not None and flag.kind == "flag" and not flagged_filter:
        if metrics == ["transactions"]:
            metrics = ["flagged_transactions"]
        elif not set(metrics) & {"flagged_transactions", "fraud_rate"}:
            flagged_filter = True
    if flagged_filter:
        plan.filters.append("is_flagged")
        plan.filter_text.append("flagged transactions only")
    if flag is not None and flag.kind == "unflag":
        plan.filters.append("NOT is_flagged")
        plan.filter_text.append("unflagged transactions only")
    plan.metrics = metrics + [c.target for c in metric_conditions if c.target not in metrics]

    for condition in row_conditions:
        plan.filters.append(f"{condition.target} {condition.op} {_fmt_number(condition.value)}")
        plan.filter_text.append(f"{condition.target.replace('_', ' ')} {condition.text}")
    for condition in metric_conditions:
        if model["metrics"][condition.target]["kind"] == "rate" and (condition.value > 1 or _is_percent(condition, comparisons)):
            condition = dataclasses.replace(condition, value=condition.value / 100)
        (plan.having if plan.dimensions else plan.checks).append(condition)

    _order_and_limit(plan, ranking, metric_mentions, mentions, lower, model)
    # Customers without a time range or transaction-level filter: the customer dimension table.
    if (plan.metrics == ["customers"] and plan.time_range is None and model.get("customer_table")
            and all(d in ("region", "status") for d in plan.dimensions)
            and all(re.match(r"(region|status)\b", f) for f in plan.filters)):
        plan.table = model["customer_table"]
    return plan


def _add_value_filters(plan: Plan, mentions: list[Mention], lower: str, model: Mapping[str, Any]) -> None:
    """One predicate per dimension: = / IN for the values named, <> / NOT IN after "except/outside/non-"."""
    dims = model["dimensions"]
    by_dim: dict[tuple[str, bool], list[str]] = {}
    for m in mentions:
        if m.kind == "value":
            negated = bool(NEGATION.search(lower[max(0, m.start - 20):m.start]))
            values = by_dim.setdefault((m.key, negated), [])
            if m.value not in values:
                values.append(m.value)
    for (dim, negated), values in by_dim.items():
        column = dims[dim]["column"]
        literal = ", ".join(_sql_literal(v) for v in values)
        if len(values) == 1:
            plan.filters.append(f"{column} {'<>' if negated else '='} {literal}")
        else:
            plan.filters.append(f"{column} {'NOT IN' if negated else 'IN'} ({literal})")
        plan.filter_text.append(f"{dims[dim]['label']} {'not ' if negated else ''}{' or '.join(values)}")


def _add_group_by(plan: Plan, mentions: list[Mention], pre_rank: str, lower: str,
                  ranking: tuple[bool, int | None, int] | None, model: Mapping[str, Any]) -> None:
    """Dimensions and time grains named after a trigger ("by", "per", "which", "top 3"), in plural, or as
    "daily/weekly/monthly"; a superlative ranks the dimension it sits next to; "trend" adds a grain."""
    def triggered(m: Mention) -> bool:
        return bool(GROUP_TRIGGER.search(pre_rank[max(0, m.start - 30):m.start]))

    for m in mentions:
        key = None
        if m.kind == "dimension":
            plural = m.phrase.endswith("s") and m.phrase != "status" and m.key != "customer"
            key = m.key if plural or triggered(m) else None
        elif m.kind == "metric" and m.key == "customers" and m.weak and triggered(m):
            key = "customer"  # "top 5 customers", "which customers": the customer dimension, not a count
        elif m.kind == "grain":
            key = m.key if m.phrase.endswith("ly") or triggered(m) else None
        if key and key not in plan.dimensions:
            plan.dimensions.append(key)
    if ranking is not None and not plan.dimensions:
        # "lowest fraud rate region": a superlative next to a singular dimension ranks that dimension.
        candidates = [m for m in mentions if m.kind == "dimension"]
        if candidates:
            plan.dimensions.append(candidates[0].key)
    if TREND.search(lower) and not any(d in model["time_grains"] for d in plan.dimensions):
        days = (plan.time_range.end - plan.time_range.start).days + 1 if plan.time_range else 90
        plan.dimensions.append("day" if days <= 31 else "week")


def _split_comparisons(plan: Plan, comparisons: list[Comparison], metric_mentions: list[Mention], lower: str,
                       model: Mapping[str, Any]) -> tuple[list[Condition], list[Condition]]:
    """(row-level conditions, metric conditions): "transactions over 1000 EUR" filters rows, "a fraud
    rate above 5 %" and "more than 1000 transactions" compare aggregates. Mentions used as row
    measures are removed from `metric_mentions`."""
    row_conditions: list[Condition] = []
    metric_conditions: list[Condition] = []
    for c in comparisons:
        if c.currency:
            plan.filters.append(f"currency = {_sql_literal(c.currency)}")
        target = _attach(c, metric_mentions, lower)
        if target is None:
            if c.currency or not metric_mentions:
                row_conditions.append(Condition("amount", c.op, c.number, c.text))
                continue
            target = metric_mentions[0]
        if c.percent and target.key in ("transactions", "flagged_transactions"):
            # "more than 3 % fraudulent transactions" is a rate.
            metric_mentions.remove(target)
            metric_conditions.append(Condition("fraud_rate", c.op, c.number, c.text))
            continue
        row_column = ROW_LEVEL_PHRASES.get(target.phrase)
        if (model["metrics"][target.key]["kind"] == "count" and target.end <= c.start
                and c.verb not in ("is", "was", "are", "were", "be")):
            row_column = "amount"  # a count noun followed by a bare comparison is about amounts
        if row_column and target.end <= c.start:
            row_conditions.append(Condition(row_column, c.op, c.number, c.text))
            metric_mentions.remove(target)
        else:
            metric_conditions.append(Condition(target.key, c.op, c.number, c.text))
    return row_conditions, metric_conditions


def _order_and_limit(plan: Plan, ranking: tuple[bool, int | None, int] | None, metric_mentions: list[Mention],
                     mentions: list[Mention], lower: str, model: Mapping[str, Any]) -> None:
    if "customer" in plan.dimensions and re.search(r"\b(?:names?|who)\b", lower):
        plan.columns = ["customer_name"]
    time_dims = [d for d in plan.dimensions if d in model["time_grains"]]
    if ranking is not None and plan.dimensions:
        descending, n, position = ranking
        plan.order = (_ranking_metric(position, metric_mentions, plan.metrics), descending)
        plan.limit = n if n is not None else (1 if _singular_dimension(mentions, plan.dimensions) else None)
    elif time_dims:
        plan.order = (time_dims[0], False)
    elif plan.dimensions:
        plan.order = (plan.metrics[0], True)
    if ranking is not None and not plan.dimensions and ranking[1] is not None:
        raise Refusal(f"'top {ranking[1]}' needs something to rank: add e.g. 'by region' or 'merchant categories'")


def _is_percent(condition: Condition, comparisons: list[Comparison]) -> bool:
    return any(c.percent and c.text == condition.text for c in comparisons)


def _fmt_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _requested_columns(lower: str) -> list[str]:
    found: list[tuple[int, str]] = []
    for pattern, column in LIST_COLUMNS:
        match = re.search(r"\b(?:" + pattern + r")\b", lower)
        if match and match.group(0).strip():
            found.append((match.start(), column))
    return [c for _, c in sorted(found)]


def _ranking_metric(position: int, mentions: list[Mention], metrics: list[str]) -> str:
    """The metric a ranking word is about: the first metric after it ("highest fraud rate"), or after "by"."""
    after = [m.key for m in mentions if m.kind == "metric" and m.start >= position and m.key in metrics]
    return after[0] if after else metrics[0]


def _singular_dimension(mentions: list[Mention], dimensions: list[str]) -> bool:
    for m in mentions:
        if m.kind in ("dimension", "grain") and m.key == dimensions[0]:
            return not (m.phrase.endswith("s") and m.phrase != "status") and not m.phrase.endswith("ly")
    return False


def _listing(plan: Plan, flag: Mention | None, row_conditions: list[Condition],
             ranking: tuple[bool, int | None, int] | None, wants_columns: list[str], lower: str) -> Plan:
    plan.kind = "list"
    if flag is not None:
        plan.filters.append("is_flagged" if flag.kind == "flag" else "NOT is_flagged")
        if flag.kind != "flag":
            plan.filter_text.append("unflagged transactions only")
    for condition in row_conditions:
        plan.filters.append(f"{condition.target} {condition.op} {_fmt_number(condition.value)}")
        plan.filter_text.append(f"{condition.target.replace('_', ' ')} {condition.text}")
    plan.columns = ["transaction_id", *wants_columns] if wants_columns else list(DEFAULT_LIST_COLUMNS)
    if ranking is not None:
        descending, n, _ = ranking
        by_score = re.search(r"\b(?:score|risk|riskiest|suspicious|anomalous)\b", lower)
        column = "fraud_score" if by_score else "amount"
        if column not in plan.columns:
            plan.columns.append(column)
        plan.order = (column, descending)
        plural = re.search(r"\btransactions\b|\bpayments\b|\bpurchases\b", lower)
        plan.limit = n if n is not None else (10 if plural else 1)
    return plan


# --- SQL -------------------------------------------------------------------------------------------------


def dimension_sql(name: str, model: Mapping[str, Any]) -> str:
    if name in model["time_grains"]:
        return model["time_grains"][name]["sql"]
    return model["dimensions"][name]["column"]


def dimension_alias(name: str, model: Mapping[str, Any]) -> str:
    return name if name in model["time_grains"] else model["dimensions"][name]["column"]


def to_sql(plan: Plan, model: Mapping[str, Any]) -> str:
    where = list(plan.filters)
    if plan.time_range is not None:
        where.append(f"txn_date BETWEEN DATE '{plan.time_range.start.isoformat()}' AND DATE '{plan.time_range.end.isoformat()}'")
    lines: list[str] = []
    if plan.kind == "list":
        lines.append("SELECT " + ", ".join(plan.columns))
        lines.append(f"FROM {plan.table}")
        if where:
            lines.append("WHERE " + "\n  AND ".join(where))
        if plan.order:
            lines.append(f"ORDER BY {plan.order[0]} {'DESC' if plan.order[1] else 'ASC'}, transaction_id")
        else:
            lines.append("ORDER BY ts, transaction_id")
        if plan.limit:
            lines.append(f"LIMIT {plan.limit}")
        return "\n".join(lines)

    metrics = model["metrics"]
    select, group = [], []
    for d in plan.dimensions:
        expression, alias = dimension_sql(d, model), dimension_alias(d, model)
        select.append(expression if expression == alias else f"{expression} AS {alias}")
        group.append(expression)
        if d == "customer":
            for column in plan.columns:
                select.append(column)
                group.append(column)
    for name in plan.metrics:
        select.append(f"{metrics[name]['sql']} AS {name}")
    lines.append("SELECT " + ",\n       ".join(select))
    lines.append(f"FROM {plan.table}")
    if where:
        lines.append("WHERE " + "\n  AND ".join(where))
    if group:
        lines.append("GROUP BY " + ", ".join(group))
    if plan.having:
        lines.append("HAVING " + "\n   AND ".join(
            f"{metrics[c.target]['sql']} {c.op} {_fmt_number(c.value)}" for c in plan.having))
    if plan.order:
        column, descending = plan.order
        ties = [dimension_alias(d, model) for d in plan.dimensions if dimension_alias(d, model) != column]
        lines.append("ORDER BY " + ", ".join([f"{column} {'DESC' if descending else 'ASC'}", *ties]))
    if plan.limit:
        lines.append(f"LIMIT {plan.limit}")
    return "\n".join(lines)
