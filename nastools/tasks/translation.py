"""A translation task that needs no download: English to German number phrases, scored by BLEU.

The corpus is generated from ``num2words``' English and German rules (``num2words`` 0.5.14) and ships
inside nastools (``numbers_en_de.tsv.xz``, 30,000 pairs, 365 KB), so nothing is downloaded and
``num2words`` is needed only to regenerate it (:func:`write_corpus`; the ``translation`` extra). The
English numbers are written in words or, half of the time, in figures as English text writes them
(``2,345,678``, ``21st``, ``$12.50``, one token per character); the German is always written out in
words, as a speech front-end reads it aloud, and segmented into morphemes (``fünfundvierzig`` →
``fünf und vierzig``) so that BLEU gives partial credit within one compound; the English words are
split at spaces, hyphens and commas. Each pair is one of:

* a cardinal below 10^12 (the number of digits drawn uniformly, so long numbers are common):
  ``2 , 3 4 5 , 6 7 8`` or ``two million , three hundred and forty five thousand , six hundred and
  seventy eight`` → ``zwei Millionen drei hundert fünf und vierzig tausend sechs hundert acht und
  siebzig``, and an English "billion" is a German "Milliarde" (``two billion`` → ``zwei
  Milliarden``);
* an ordinal below 10^6, bare (``the 2 1 st`` → ``der ein und zwanzig ste``) or in a dative frame
  whose ending changes the number's last morpheme (``on the seventh day`` → ``am sieb ten Tag``);
* a year 1100-2099 (``in 1 9 8 7`` or ``in nineteen eighty seven`` → ``im Jahr neun zehn hundert
  sieben und achtzig``, but ``in twenty ten`` → ``im Jahr zwei tausend zehn``);
* an amount of euros or dollars (``it costs $ 1 . 5 0`` or ``it costs one dollar , fifty cents`` →
  ``es kostet ein Dollar und fünfzig Cent``);
* a count of things, bare or after a verb, where German inflects "one" by the noun's gender and the
  case (``I have one dog`` → ``ich habe einen Hund``; ``1 cat`` → ``eine Katze``) and takes
  irregular plurals (``three trees`` → ``drei Bäume``).

Why it needs attention, and why sub-networks differ on it: German swaps units and tens (``forty
five`` → ``fünf und vierzig``: the decoder must look two source words ahead, then back); a number in
figures says its magnitude only by its count of digits, so the decoder must find where in the
number it is (``3 4 5 , 6 7 8`` → ``drei hundert fünf und vierzig tausend ...``); German drops "and"
and the commas, inserts "hundert" into years by the century's rule, and inflects the number by the
noun that follows it in the source and by the frame that precedes it; long numbers need every
position right. The number words are num2words'; the frames, the eight nouns with their genders and
plurals are nastools' own (plain, correct German).

BLEU is sacrebleu's corpus BLEU over the morpheme tokens (``tokenize="none"``: the text is already
tokenised; 13a would split nothing more, and detokenised compounds would turn BLEU into whole-number
exact match), of greedy decoding (the argmax token at each step, up to ``max_length`` tokens) on a
fixed held-out subsample; other draws are other random subsamples of the held-out pairs, which no
training pair shares a source sentence with.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import lzma
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nastools.metrics import Metric
from nastools.tasks._task import IGNORE_INDEX, cross_entropy, distillation_kl

__all__ = [
    "BLEU",
    "CORPUS_FILE",
    "SPECIALS",
    "TranslationConfig",
    "TranslationTask",
    "bleu",
    "generate_pairs",
    "greedy_translate",
    "load_corpus",
    "write_corpus",
]

#: Held-out corpus BLEU of greedy decoding (maximised).
BLEU = Metric(
    "bleu",
    "max",
    "BLEU",
    "held-out corpus BLEU (sacrebleu, morpheme tokens, greedy decoding) of English to German number phrases",
)
#: The shipped corpus (inside this package).
CORPUS_FILE = "numbers_en_de.tsv.xz"
#: SHA-256 of the shipped corpus file: a changed or damaged copy is refused, not silently trained on.
CORPUS_SHA256 = "0e88907756e169031aeaf893804b38ba6f99e5e4502ee994db8de6332453552d"
#: How the shipped corpus was generated (:func:`write_corpus` with these arguments).
CORPUS_PAIRS, CORPUS_SEED, CORPUS_NUM2WORDS = 30_000, 0, "0.5.14"
#: fairseq's special symbols, ids 0-3: ``<s>``, ``<pad>`` (1), ``</s>`` (2, also the decoder's first
#: input), ``<unk>``.
SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")
PAD, EOS = 1, 2

# German number words are compounds: a greedy longest-match over these morphemes splits every one
# num2words writes here (checked: each split must join back to the word, or generation fails).
_MORPHEMES = sorted(
    """null eins eine ein zwei drei vier fünf sechs sech sieben sieb acht neun zehn elf zwölf zwanzig
    dreißig vierzig fünfzig sechzig siebzig achtzig neunzig hundert tausend und Million Millionen
    Milliarde Milliarden erste ersten dritte dritten achte achten te ten ste sten Euro Dollar Cent""".split(),
    key=len,
    reverse=True,
)
# 47 countable nouns: english singular, english plural, german gender, german singular, german plural
_NOUNS = tuple(
    tuple(entry.split())
    for entry in """
    apple apples m Apfel Äpfel; dog dogs m Hund Hunde; tree trees m Baum Bäume; chair chairs m Stuhl Stühle;
    table tables m Tisch Tische; bird birds m Vogel Vögel; shoe shoes m Schuh Schuhe;
    stone stones m Stein Steine; letter letters m Brief Briefe; key keys m Schlüssel Schlüssel;
    train trains m Zug Züge; fish fish m Fisch Fische; man men m Mann Männer; ball balls m Ball Bälle;
    plate plates m Teller Teller; spoon spoons m Löffel Löffel; hat hats m Hut Hüte;
    garden gardens m Garten Gärten; mountain mountains m Berg Berge;
    cat cats f Katze Katzen; bottle bottles f Flasche Flaschen; flower flowers f Blume Blumen;
    woman women f Frau Frauen; cup cups f Tasse Tassen; lamp lamps f Lampe Lampen; mouse mice f Maus Mäuse;
    cow cows f Kuh Kühe; clock clocks f Uhr Uhren; bridge bridges f Brücke Brücken; pear pears f Birne Birnen;
    city cities f Stadt Städte; fork forks f Gabel Gabeln; door doors f Tür Türen;
    house houses n Haus Häuser; book books n Buch Bücher; child children n Kind Kinder; car cars n Auto Autos;
    horse horses n Pferd Pferde; sheep sheep n Schaf Schafe; egg eggs n Ei Eier; glass glasses n Glas Gläser;
    picture pictures n Bild Bilder; bed beds n Bett Betten; window windows n Fenster Fenster;
    ship ships n Schiff Schiffe; knife knives n Messer Messer; boat boats n Boot Boote
    """.split(";")
)
# "one" before a noun: by case and gender
_ONE = {"nom": {"m": "ein", "f": "eine", "n": "ein"}, "acc": {"m": "einen", "f": "eine", "n": "ein"}}
# subjects (english, german) and verbs taking the accusative: english base and third person, then the
# german present tense for each subject
_SUBJECTS = (("I", "ich"), ("you", "du"), ("he", "er"), ("she", "sie"), ("we", "wir"), ("they", "sie"))
_VERBS = (
    ("have", "has", ("habe", "hast", "hat", "hat", "haben", "haben")),
    ("see", "sees", ("sehe", "siehst", "sieht", "sieht", "sehen", "sehen")),
    ("buy", "buys", ("kaufe", "kaufst", "kauft", "kauft", "kaufen", "kaufen")),
    ("need", "needs", ("brauche", "brauchst", "braucht", "braucht", "brauchen", "brauchen")),
)
# kinds of pairs and their shares of the corpus
_KINDS = (
    ("cardinal", 0.25),
    ("ordinal", 0.08),
    ("day", 0.08),
    ("year", 0.12),
    ("currency", 0.12),
    ("count", 0.12),
    ("verb", 0.23),
)


def _segment(word: str) -> list[str]:
    """A German number word split into morphemes (greedy longest match; raises where none fits)."""
    pieces, start = [], 0
    while start < len(word):
        piece = next((m for m in _MORPHEMES if word.startswith(m, start)), None)
        if piece is None:
            raise ValueError(f"cannot split the German number word {word!r} at {word[start:]!r}")
        pieces.append(piece)
        start += len(piece)
    return pieces


def _german(text: str) -> list[str]:
    return [piece for word in text.split() for piece in _segment(word)]


def _english(text: str) -> list[str]:
    return text.replace("-", " ").replace(",", " ,").split()


def _number(rng: random.Random, max_digits: int) -> int:
    """A number whose count of digits is uniform in 1..max_digits (so long numbers are common)."""
    digits = rng.randint(1, max_digits)
    return rng.randint(10 ** (digits - 1) if digits > 1 else 0, 10**digits - 1)


def _digits(text: str) -> list[str]:
    """A number written in figures, one token per character (``2,345`` -> ``2 , 3 4 5``)."""
    return list(text)


def _ordinal_suffix(n: int) -> str:
    if n % 100 in (11, 12, 13):
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


def _pair(rng: random.Random, kind: str) -> tuple[list[str], list[str]]:
    """One pair of ``kind``; the English number in words or, half of the time, in figures."""
    from num2words import num2words

    figures = rng.random() < 0.5
    if kind == "cardinal":
        n = _number(rng, 12)
        english = _digits(f"{n:,}") if figures else _english(num2words(n, lang="en"))
        return english, _german(num2words(n, lang="de"))
    if kind in ("ordinal", "day"):
        n = max(1, _number(rng, 6))
        if figures:
            english = [*_digits(f"{n:,}"), _ordinal_suffix(n)]
        else:
            english = _english(num2words(n, lang="en", to="ordinal"))
        german = num2words(n, lang="de", to="ordinal")
        if kind == "ordinal":
            return ["the", *english], ["der", *_german(german)]
        return ["on", "the", *english, "day"], ["am", *_german(german + "n"), "Tag"]  # dative: -n
    if kind == "year":
        year = rng.randint(1100, 2099)
        english = _digits(str(year)) if figures else _english(num2words(year, lang="en", to="year"))
        return ["in", *english], ["im", "Jahr", *_german(num2words(year, lang="de", to="year"))]
    if kind == "currency":
        currency = rng.choice(("EUR", "USD"))
        amount = Decimal(_number(rng, 6)) + Decimal(rng.randint(0, 99)) / 100  # a Decimal: an int means cents
        if figures:
            english = [{"EUR": "€", "USD": "$"}[currency], *_digits(f"{amount:,.2f}")]
        else:
            english = _english(num2words(amount, lang="en", to="currency", currency=currency))
        german = num2words(amount, lang="de", to="currency", currency=currency)
        return ["it", "costs", *english], ["es", "kostet", *_german(german)]
    singular, plural, gender, einzahl, mehrzahl = rng.choice(_NOUNS)
    case = "nom" if kind == "count" else "acc"
    n = 1 if rng.random() < 0.2 else _number(rng, 6)
    while n != 1 and (n < 2 or n % 100 == 1):  # "hunderteins Katzen" is not German: leave such counts out
        n = _number(rng, 6)
    if n == 1:
        english, german = ["1" if figures else "one", singular], [_ONE[case][gender], einzahl]
    else:
        number = _digits(f"{n:,}") if figures else _english(num2words(n, lang="en"))
        english, german = [*number, plural], [*_german(num2words(n, lang="de")), mehrzahl]
    if kind == "verb":
        person = rng.randrange(len(_SUBJECTS))
        base, third, conjugated = rng.choice(_VERBS)
        (subject_en, subject_de), verb_en = _SUBJECTS[person], third if person in (2, 3) else base
        return [subject_en, verb_en, *english], [subject_de, conjugated[person], *german]
    return english, german


def generate_pairs(n_pairs: int, seed: int, max_tokens: int = 29) -> list[tuple[str, str]]:
    """``n_pairs`` English-German pairs with distinct English sentences, deterministic for a seed.

    Needs ``num2words`` (``pip install nastools[translation]``); the shipped corpus is
    ``generate_pairs(CORPUS_PAIRS, CORPUS_SEED)`` with num2words ``CORPUS_NUM2WORDS``.

    Args:
        n_pairs: Distinct pairs to make.
        seed: Seeds the kinds, numbers, nouns and frames.
        max_tokens: Longest sentence (tokens, either side); longer ones are drawn again.

    Returns:
        ``(english, german)`` pairs, tokens separated by single spaces.

    Example:
        >>> generate_pairs(2, seed=0)[1]  # doctest: +SKIP
        ('I have 6 9 7 books', 'ich habe sechs hundert sieben und neunzig Bücher')
    """
    rng = random.Random(seed)
    kinds, weights = zip(*_KINDS)
    pairs: dict[str, str] = {}
    while len(pairs) < n_pairs:
        english, german = _pair(rng, rng.choices(kinds, weights)[0])
        if len(english) <= max_tokens and len(german) <= max_tokens:
            pairs.setdefault(" ".join(english), " ".join(german))
    return list(pairs.items())


def write_corpus(path: str | Path, n_pairs: int = CORPUS_PAIRS, seed: int = CORPUS_SEED) -> Path:
    """Generate the corpus and write it xz-compressed: a header line saying how, then ``english<TAB>german``.

    ``write_corpus("nastools/tasks/numbers_en_de.tsv.xz")`` rewrites the shipped one (then update
    :data:`CORPUS_SHA256`).
    """
    from importlib.metadata import version

    call = f"nastools.tasks.translation.generate_pairs({n_pairs}, seed={seed})"
    header = f"# {call}, num2words {version('num2words')}"
    lines = [header, *(f"{english}\t{german}" for english, german in generate_pairs(n_pairs, seed))]
    path = Path(path)
    path.write_bytes(lzma.compress(("\n".join(lines) + "\n").encode("utf-8"), preset=9))
    return path


@lru_cache(maxsize=4)
def load_corpus(path: str | None = None) -> tuple[tuple[str, str], ...]:
    """The corpus pairs ``(english, german)``: the shipped file (checked against its SHA-256), or ``path``.

    Raises:
        ValueError: The shipped file's bytes are not the ones released (damaged or regenerated: one line),
            or a line is not ``english<TAB>german``.
    """
    if path is None:
        data = (importlib.resources.files("nastools.tasks") / CORPUS_FILE).read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest != CORPUS_SHA256:
            raise ValueError(
                f"the shipped corpus {CORPUS_FILE} has SHA-256 {digest[:16]}..., not the released "
                f"{CORPUS_SHA256[:16]}...: reinstall nastools (or pass the path of a regenerated corpus)"
            )
    else:
        data = Path(path).read_bytes()
    pairs = []
    for number, line in enumerate(lzma.decompress(data).decode("utf-8").splitlines(), start=1):
        if line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != 2 or not all(fields):
            raise ValueError(f"corpus line {number} is not 'english<TAB>german': {line[:60]!r}")
        pairs.append((fields[0], fields[1]))
    return tuple(pairs)


def bleu(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Sacrebleu's corpus BLEU of tokenised sentences (``tokenize="none"``: tokens are space-separated).

    Example:
        >>> round(bleu(["drei hundert fünf und vierzig"], ["drei hundert fünf und vierzig"]), 6)
        100.0
    """
    from sacrebleu.metrics import BLEU as SacreBLEU  # noqa: N811

    return float(SacreBLEU(tokenize="none").corpus_score(list(hypotheses), [list(references)]).score)


def _incremental_decoder(module: nn.Module) -> nn.Module | None:
    """``module``, or the one module inside it, with the incremental-decoding API; None if there is none.

    The checks hand the task a thin wrapper around a sub-network (its arch's input preparation
    first: none for translation); decoding looks through it to the sub-network's cached decoding.
    """
    found = [
        inner
        for inner in module.modules()
        if all(callable(getattr(inner, name, None)) for name in ("encode", "start_decoding", "decode_step"))
    ]
    return found[0] if len(found) == 1 else None


@torch.no_grad()
def greedy_translate(module: nn.Module, src_tokens: torch.Tensor, max_length: int) -> torch.Tensor:
    """Greedy decoding: the argmax token at each step until every row has emitted ``</s>`` (id 2).

    A module with an incremental-decoding API (``encode(src)``, ``start_decoding(encoded)``,
    ``decode_step(tokens, state)`` returning next-token logits, as HAT's sub-networks), or a wrapper
    holding exactly one such module, decodes incrementally with its cached states; any other module is
    called teacher-forced, ``module(src, prev) -> logits (B, T, V)``, on the growing prefix (the same
    tokens, many times slower).

    Args:
        module: A sequence-to-sequence model whose decoder input starts with ``</s>``.
        src_tokens: Source ids ``(batch, source_length)``, right-padded with id 1.
        max_length: Most tokens generated per row (``</s>`` included).

    Returns:
        Generated ids ``(batch, <= max_length)``; a row continues with padding after its ``</s>``.
    """
    rows = src_tokens.shape[0]
    decoder = _incremental_decoder(module)
    state = decoder.start_decoding(decoder.encode(src_tokens)) if decoder is not None else None
    prev = torch.full((rows, 1), EOS, dtype=torch.long, device=src_tokens.device)
    finished = torch.zeros(rows, dtype=torch.bool, device=src_tokens.device)
    for _ in range(max_length):
        logits = (
            decoder.decode_step(prev[:, -1], state)
            if decoder is not None
            else module(src_tokens, prev)[:, -1]
        )
        tokens = logits.argmax(dim=-1).masked_fill(finished, PAD)
        prev = torch.cat([prev, tokens[:, None]], dim=1)
        finished |= tokens.eq(EOS)
        if bool(finished.all()):
            break
    return prev[:, 1:]


@dataclass(frozen=True)
class TranslationConfig:
    """How the translation task is made; stored with a checkpoint so it can be rebuilt.

    Attributes:
        heldout: Pairs held out of training (drawn with ``seed``; no training pair shares their source).
        eval_sentences: Held-out sentences one evaluation translates (the fixed one: the first
            ``eval_sentences`` held-out pairs; other draws: random subsamples of all held-out pairs).
        max_length: Longest sentence in tokens, ``</s>`` included: example inputs are padded to it
            and decoding stops after it.
        vocab: The joint vocabulary (None: :data:`SPECIALS` then the corpus' tokens, sorted; the task
            stores the resolved one, so a checkpoint keeps its ids' meaning).
        seed: Seeds the split and the evaluation draws.
    """

    heldout: int = 2000
    eval_sentences: int = 500
    max_length: int = 30
    vocab: tuple[str, ...] | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        """Check the sizes (one line, naming the field)."""
        for name in ("heldout", "eval_sentences", "max_length"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"TranslationConfig.{name} must be a positive integer, got {value!r}")
        if self.eval_sentences > self.heldout:
            raise ValueError(
                f"TranslationConfig.eval_sentences ({self.eval_sentences}) exceeds heldout ({self.heldout})"
            )
        if self.vocab is not None and tuple(self.vocab[: len(SPECIALS)]) != SPECIALS:
            raise ValueError(f"TranslationConfig.vocab must start with the special symbols {SPECIALS}")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-friendly)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TranslationConfig:
        """Inverse of :meth:`to_dict` (a stored vocabulary list becomes a tuple)."""
        values = dict(values)
        if values.get("vocab") is not None:
            values["vocab"] = tuple(values["vocab"])
        return cls(**values)


def _pad(sentences: Sequence[Sequence[int]], length: int | None = None) -> torch.Tensor:
    length = max(len(s) for s in sentences) if length is None else length
    out = np.full((len(sentences), length), PAD, dtype=np.int64)
    for row, sentence in enumerate(sentences):
        out[row, : len(sentence)] = sentence
    return torch.from_numpy(out)


class TranslationTask:
    """English to German number phrases: the :class:`~nastools.tasks._task.Task` protocol for translation.

    A model maps ``(src_tokens, prev_tokens)`` to next-token logits ``(B, T, V)``: the source ends with
    ``</s>``; the decoder input is ``</s>`` then the target, and the targets are the target then
    ``</s>`` (fairseq's layout), padding marked :data:`~nastools.tasks._task.IGNORE_INDEX`.

    Args:
        config: How it is made (default: ``TranslationConfig()``).
        pairs: The corpus (default: the shipped one, :func:`load_corpus`).

    Attributes:
        config: ``config`` with its vocabulary resolved (stored in a checkpoint).
        metric: :data:`BLEU`.

    Example:
        >>> task = TranslationTask()
        >>> task.train_pairs[1]
        ('I buy two hundred and forty seven balls', 'ich kaufe zwei hundert sieben und vierzig Bälle')
        >>> (src, prev), targets = task.train_batch(torch.arange(1, 2), torch.Generator())
        >>> task.decode(src[0].tolist()), prev[0, :3].tolist() == [EOS, *targets[0, :2].tolist()]
        ('I buy two hundred and forty seven balls', True)
    """

    metric = BLEU

    def __init__(
        self, config: TranslationConfig | None = None, pairs: Sequence[tuple[str, str]] | None = None
    ):
        config = config or TranslationConfig()
        pairs = load_corpus() if pairs is None else tuple(pairs)
        if config.heldout >= len(pairs):
            raise ValueError(
                f"TranslationConfig.heldout ({config.heldout}) must be below the {len(pairs)} pairs"
            )
        vocab = config.vocab
        if vocab is None:
            tokens = {token for pair in pairs for side in pair for token in side.split()}
            vocab = SPECIALS + tuple(sorted(tokens - set(SPECIALS)))
        self.config = replace(config, vocab=tuple(vocab))
        self.index = {token: i for i, token in enumerate(self.config.vocab)}
        order = np.random.default_rng(config.seed).permutation(len(pairs))
        heldout = [pairs[i] for i in order[: config.heldout]]
        train = [pairs[i] for i in order[config.heldout :]]
        self.heldout_pairs, self.train_pairs = heldout, train
        longest = max(len(side.split()) + 1 for pair in pairs for side in pair)
        if longest > config.max_length:
            raise ValueError(
                f"TranslationConfig.max_length ({config.max_length}) is below the corpus' longest sentence "
                f"({longest} tokens with </s>)"
            )
        self._train_src = _pad([self.encode(en) for en, _ in train])
        self._train_tgt = _pad([self.encode(de) for _, de in train])
        self._draws: dict[int | None, tuple[torch.Tensor, list[str]]] = {}

    @property
    def vocab_size(self) -> int:
        """Token ids of the joint vocabulary."""
        return len(self.config.vocab)

    @property
    def n_train(self) -> int:
        """Training pairs."""
        return len(self.train_pairs)

    def encode(self, sentence: str) -> list[int]:
        """Token ids of a tokenised sentence, then ``</s>`` (unknown tokens: ``<unk>``)."""
        return [self.index.get(token, 3) for token in sentence.split()] + [EOS]

    def decode(self, ids: Sequence[int]) -> str:
        """The tokenised sentence of generated ids, up to the first ``</s>`` (padding and ``<s>`` dropped)."""
        words = []
        for i in ids:
            if i == EOS:
                break
            if i not in (PAD, 0):
                words.append(self.config.vocab[i])
        return " ".join(words)

    def _batch(
        self, src: torch.Tensor, tgt: torch.Tensor
    ) -> tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor]:
        """Trim padding columns; ``((src, </s> + target), target + </s>)`` with padding ignored in targets."""
        src = src[:, : int(src.ne(PAD).sum(1).max())]
        tgt = tgt[:, : int(tgt.ne(PAD).sum(1).max())]
        prev = torch.cat([torch.full((len(tgt), 1), EOS, dtype=torch.long), tgt[:, :-1]], dim=1)
        prev = prev.masked_fill(prev.eq(EOS) & (torch.arange(prev.shape[1]) > 0), PAD)  # no </s> inside
        return (src, prev), tgt.masked_fill(tgt.eq(PAD), IGNORE_INDEX)

    def train_batch(
        self, indices: torch.Tensor, generator: torch.Generator
    ) -> tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor]:
        """The training pairs at ``indices``: ``((src_tokens, prev_tokens), targets)``, padded to the longest.

        ``generator`` is unused (no augmentation).
        """
        return self._batch(self._train_src[indices], self._train_tgt[indices])

    def example_inputs(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``batch_size`` held-out ``(src_tokens, prev_tokens)`` padded to ``max_length``: for MACs."""
        pairs = [self.heldout_pairs[i % len(self.heldout_pairs)] for i in range(batch_size)]
        src = _pad([self.encode(en) for en, _ in pairs], self.config.max_length)
        prev = _pad([[EOS, *self.encode(de)[:-1]] for _, de in pairs], self.config.max_length)
        return src, prev

    def loss(
        self, outputs: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0
    ) -> torch.Tensor:
        """Mean cross-entropy of the logits ``(B, T, V)`` over the target tokens (padding left out)."""
        return cross_entropy(outputs, targets, label_smoothing)

    def distillation_loss(self, outputs: torch.Tensor, teacher_outputs: torch.Tensor) -> torch.Tensor:
        """KL divergence to the teacher's next-token distributions, averaged over the positions.

        The trainer passes the target tokens' positions only (padding left out, as in :meth:`loss`:
        :func:`~nastools.tasks._task.counted_positions`).
        """
        return distillation_kl(outputs, teacher_outputs)

    def heldout_draw(self, draw: int | None) -> tuple[torch.Tensor, list[str]]:
        """Sources and references of one evaluation: the fixed one (None) or a random held-out subsample."""
        if draw is not None and (isinstance(draw, bool) or not isinstance(draw, int) or draw < 0):
            raise ValueError(f"draw must be None or a non-negative integer, got {draw!r}")
        if draw not in self._draws:
            n = self.config.eval_sentences
            if draw is None:
                chosen = range(n)
            else:
                seed = np.random.SeedSequence([self.config.seed, draw]).generate_state(1)[0]
                chosen = np.random.default_rng(seed).choice(len(self.heldout_pairs), n, replace=False)
            pairs = [self.heldout_pairs[i] for i in chosen]
            self._draws[draw] = (_pad([self.encode(en) for en, _ in pairs]), [de for _, de in pairs])
        return self._draws[draw]

    def translate(self, module: nn.Module, sources: torch.Tensor, batch_size: int = 250) -> list[str]:
        """Greedy translations (tokenised German) of source ids, in batches (see :func:`greedy_translate`)."""
        was_training = module.training
        module.eval()
        try:
            out = []
            for start in range(0, len(sources), batch_size):
                generated = greedy_translate(
                    module, sources[start : start + batch_size], self.config.max_length
                )
                out += [self.decode(row) for row in generated.tolist()]
            return out
        finally:
            module.train(was_training)

    def score(self, module: nn.Module, arch: object = None, *, draw: int | None = None) -> float:
        """Held-out BLEU of ``module``'s greedy translations.

        Args:
            module: Maps ``(src_tokens, prev_tokens)`` to next-token logits; one with HAT's incremental
                decoding API decodes faster (:func:`greedy_translate`).
            arch: Unused: BLEU does not depend on the arch beyond ``module``.
            draw: None: the fixed held-out subsample; an integer: another random one (:meth:`heldout_draw`).
        """
        sources, references = self.heldout_draw(draw)
        return bleu(self.translate(module, sources), references)
