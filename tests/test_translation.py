"""The translation task: the shipped corpus, its split, batches, losses, greedy decoding and BLEU."""

from __future__ import annotations

import lzma

import pytest
import torch

from nastools.supernets._training import Recipe, TrainingConfig, train_supernet
from nastools.supernets.hat import ElasticHAT, HATConfig
from nastools.tasks import translation
from nastools.tasks._task import IGNORE_INDEX, Task, counted_positions
from nastools.tasks.translation import (
    EOS,
    PAD,
    TranslationConfig,
    TranslationTask,
    bleu,
    greedy_translate,
    load_corpus,
)


@pytest.fixture(scope="module")
def task() -> TranslationTask:
    return TranslationTask(TranslationConfig(heldout=300, eval_sentences=100))


@pytest.fixture(scope="module")
def model(task) -> torch.nn.Module:
    torch.manual_seed(0)
    config = HATConfig(
        vocab_size=task.vocab_size,
        encoder_layers=3,
        decoder_layers=(1, 2),
        encoder_embed=(16,),
        decoder_embed=(16,),
        encoder_ffn=(32,),
        decoder_ffn=(32,),
        encoder_heads=(2,),
        decoder_heads=(2,),
        cross_heads=(2,),
        qkv_dim=16,
    )
    net = ElasticHAT(config)
    return net.get_active_subnet({**net.max_arch(), "arbattn_0": 2, "arbattn_1": 1})


def test_bleu_of_the_references_is_100_and_of_empty_outputs_0(task):
    _, references = task.heldout_draw(None)
    assert bleu(references, references) == pytest.approx(100.0)
    assert bleu([""] * len(references), references) == 0.0
    # partial credit within a compound: one wrong morpheme of five
    assert 0 < bleu(["drei hundert fünf und vierzig"], ["drei hundert sechs und vierzig"]) < 100


def test_task_follows_the_protocol(task):
    assert isinstance(task, Task)
    assert task.metric.name == "bleu" and task.metric.direction == "max"
    assert task.n_train == 30_000 - 300 and task.vocab_size == len(task.config.vocab) == 363


def test_split_is_deterministic_and_heldout_sources_are_unseen(task):
    again = TranslationTask(TranslationConfig(heldout=300, eval_sentences=100))
    assert again.heldout_pairs == task.heldout_pairs and again.train_pairs == task.train_pairs
    seen = {english for english, _ in task.train_pairs}
    assert not seen & {english for english, _ in task.heldout_pairs}
    other = TranslationTask(TranslationConfig(heldout=300, eval_sentences=100, seed=1))
    assert other.heldout_pairs != task.heldout_pairs


def test_shipped_corpus_is_checked(monkeypatch):
    assert len(load_corpus()) == translation.CORPUS_PAIRS
    load_corpus.cache_clear()
    monkeypatch.setattr(translation, "CORPUS_SHA256", "0" * 64)
    try:
        with pytest.raises(ValueError, match="not the released"):
            load_corpus()
    finally:
        load_corpus.cache_clear()


def test_a_malformed_corpus_line_is_named(tmp_path):
    path = tmp_path / "bad.tsv.xz"
    path.write_bytes(lzma.compress(b"# header\none\tein\nno tab here\n"))
    with pytest.raises(ValueError, match="line 3"):
        load_corpus(str(path))


def test_shipped_corpus_is_num2words_output():
    from importlib.metadata import version

    pytest.importorskip("num2words")
    if version("num2words") != translation.CORPUS_NUM2WORDS:
        pytest.skip(f"the corpus was generated with num2words {translation.CORPUS_NUM2WORDS}")
    # generation is sequential: the first pairs of a smaller corpus are the shipped corpus' first pairs
    assert tuple(translation.generate_pairs(150, translation.CORPUS_SEED)) == load_corpus()[:150]


def test_german_numbers_split_into_morphemes_that_join_back():
    num2words = pytest.importorskip("num2words").num2words
    for number in (45, 17, 16, 1066, 2_345_678, 999_999_999, 7):
        word = num2words(number, lang="de")
        pieces = translation._german(word)
        assert "".join(pieces) == word.replace(" ", "")
    assert translation._german("fünfundvierzig") == ["fünf", "und", "vierzig"]
    with pytest.raises(ValueError, match="cannot split"):
        translation._german("Katze")


def test_train_batch_shifts_the_target_and_ignores_padding(task):
    (src, prev), targets = task.train_batch(torch.arange(8), torch.Generator())
    assert prev.shape == targets.shape and (prev[:, 0] == EOS).all()
    counted = targets != IGNORE_INDEX
    lengths = counted.sum(1)
    for row in range(8):
        n = int(lengths[row])
        assert targets[row, n - 1] == EOS  # the target ends with </s>
        assert torch.equal(prev[row, 1:n], targets[row, : n - 1])  # the input is the target shifted right
        assert (prev[row, n:] == PAD).all() and not (prev[row, 1:] == EOS).any()
    assert (src != PAD).sum(1).max() == src.shape[1]  # padded to the batch's longest only
    english, german = task.train_pairs[0]
    assert task.decode(targets[0][counted[0]].tolist()) == german
    assert task.decode(src[0].tolist()) == english


def test_loss_leaves_padding_out(task):
    (_, prev), targets = task.train_batch(torch.arange(4), torch.Generator())
    logits = torch.randn(*targets.shape, task.vocab_size)
    changed = logits.clone()
    changed[targets == IGNORE_INDEX] += 100.0 * torch.randn(task.vocab_size)
    assert torch.allclose(task.loss(logits, targets, 0.1), task.loss(changed, targets, 0.1))


class RecordingTranslation(TranslationTask):
    """The translation task on its first 64 training pairs, noting every batch and every loss call."""

    n_train = 64

    def __init__(self, config: TranslationConfig) -> None:
        super().__init__(config)
        self.calls: list[tuple] = []

    def train_batch(self, indices, generator):
        inputs, targets = super().train_batch(indices, generator)
        self.calls.append(("batch", targets))
        return inputs, targets

    def loss(self, outputs, targets, label_smoothing=0.0):
        self.calls.append(("loss", outputs.detach()))
        return super().loss(outputs, targets, label_smoothing)

    def distillation_loss(self, outputs, teacher_outputs):
        self.calls.append(("distill", outputs.detach(), teacher_outputs))
        return super().distillation_loss(outputs, teacher_outputs)


def test_the_trainer_distills_only_the_target_positions(task):
    """Padding is left out of the distillation term as of the labels' loss: the trainer hands the task the
    logits of the counted positions only, the student's and the teacher's."""
    recording = RecordingTranslation(TranslationConfig(heldout=300, eval_sentences=100))
    config = HATConfig(
        vocab_size=task.vocab_size,
        encoder_layers=3,
        decoder_layers=(1, 2),
        encoder_embed=(8, 16),
        decoder_embed=(8, 16),
        encoder_ffn=(16, 32),
        decoder_ffn=(16, 32),
        encoder_heads=(2,),
        decoder_heads=(2,),
        cross_heads=(2,),
        qkv_dim=16,
    )
    training = TrainingConfig(epochs=2, warmup_epochs=1, batch_size=32, n_random=0, threads=1)
    recipe = Recipe("tiny-hat", "hat", ElasticHAT, config, task=lambda: recording, training=training)
    train_supernet(recipe, task=recording, progress=False)
    steps = [i for i, call in enumerate(recording.calls) if call[0] == "batch"][2:]  # the elastic epoch
    assert len(steps) == 2
    for i in steps:
        (_, targets), (_, largest), (_, smallest), (kind, student, teacher) = recording.calls[i : i + 4]
        counted = targets != IGNORE_INDEX
        assert kind == "distill" and not bool(counted.all())  # the batch has padding to leave out
        assert torch.equal(student, smallest[counted]) and torch.equal(teacher, largest[counted])


def test_counted_positions_leaves_out_ignored_targets_only():
    logits, teacher = torch.randn(2, 4, 5), torch.randn(2, 4, 5)
    targets = torch.tensor([[3, 2, IGNORE_INDEX, IGNORE_INDEX], [1, 1, 2, IGNORE_INDEX]])
    student, kept = counted_positions(logits, teacher, targets)
    assert torch.equal(student, logits[targets != IGNORE_INDEX]) and student.shape == (5, 5)
    assert torch.equal(kept, teacher[targets != IGNORE_INDEX])
    images, labels = torch.randn(3, 10), torch.tensor([0, 4, 9])  # nothing to leave out: as they are
    assert all(a is b for a, b in zip(counted_positions(images, images, labels), (images, images)))
    soft = torch.rand(3, 10)  # soft labels mark no padding
    assert counted_positions(images, images, soft)[0] is images


def test_example_inputs_are_padded_to_max_length(task):
    src, prev = task.example_inputs(3)
    assert src.shape == prev.shape == (3, 30)
    assert (prev[:, 0] == EOS).all() and (src == EOS).sum() == 3


def test_incremental_and_teacher_forced_greedy_decoding_agree(task, model):
    sources = task.heldout_draw(None)[0][:20]
    incremental = greedy_translate(model, sources, 12)

    class ForwardOnly(torch.nn.Module):  # the same model, without its incremental-decoding API
        def __init__(self) -> None:
            super().__init__()
            self.inner = [model]

        def forward(self, src, prev):
            return self.inner[0](src, prev)

    assert torch.equal(incremental, greedy_translate(ForwardOnly(), sources, 12))

    class Wrapper(torch.nn.Module):  # as the checks hand a sub-network over: inside a thin wrapper
        def __init__(self) -> None:
            super().__init__()
            self.subnet = model

        def forward(self, src, prev):
            raise AssertionError("decoding looks through the wrapper to the incremental decoder")

    assert torch.equal(incremental, greedy_translate(Wrapper(), sources, 12))


def test_score_draws_other_heldout_subsamples(task, model):
    fixed = task.score(model)
    assert task.score(model) == fixed  # deterministic
    assert 0.0 <= fixed <= 100.0
    first, second = task.heldout_draw(0), task.heldout_draw(1)
    assert first[1] != second[1] and task.heldout_draw(0)[1] == first[1]
    assert set(first[1]) <= {german for _, german in task.heldout_pairs}
    with pytest.raises(ValueError, match="draw must be"):
        task.score(model, draw=-1)


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="eval_sentences"):
        TranslationConfig(heldout=10, eval_sentences=20)
    with pytest.raises(ValueError, match="max_length"):
        TranslationTask(TranslationConfig(max_length=5))
    config = TranslationConfig(vocab=("<s>", "<pad>", "</s>", "<unk>", "eins"))
    assert TranslationConfig.from_dict(config.to_dict()) == config
