"""Latency look-up tables: OFA's Note10 tables and NSGANetV2's i7-8700K table, and their hardware keys."""

import numpy as np
import pytest
import yaml
from scipy.stats import kendalltau

from nastools.evaluation import Evaluator, wide
from nastools.hardware import HardwareConfig, LookupTableHardware, resolve_hardware
from nastools.store import ResultStore
from nastools.supernet import load_supernet
from nastools.supernets.mobilenetv3 import (
    KNOWN_TABLES,
    ElasticMobileNetV3,
    LatencyTable,
    MobileNetV3Config,
    MobileNetV3Supernet,
    arch_to_ofa_config,
    ofa,
    published_tables,
)

STAGES = [
    (2, "relu", False),
    (2, "relu", True),
    (2, "h_swish", False),
    (1, "h_swish", True),
    (2, "h_swish", True),
]


def note10_keys(spec):
    """Keys of OFA's ``predict_network_latency_given_spec`` for the w1.2 supernet, written out by hand."""
    r = spec["r"][0]
    size = (r + 1) // 2
    keys = [
        f"Conv-input:{r}x{r}x3-output:{size}x{size}x24",
        f"expanded_conv-input:{size}x{size}x24-output:{size}x{size}x24-expand:24-kernel:3-stride:1-idskip:1-se:0-hs:0",
    ]
    channels = 24
    for block in range(20):
        stage, position = divmod(block, 4)
        if position >= spec["d"][stage]:
            continue
        stride, act, se = STAGES[stage] if position == 0 else (1, *STAGES[stage][1:])
        width = (32, 48, 96, 136, 192)[stage]
        out = (size - 1) // stride + 1
        keys.append(
            f"expanded_conv-input:{size}x{size}x{channels}-output:{out}x{out}x{width}"
            f"-expand:{round(channels * spec['e'][block])}-kernel:{spec['ks'][block]}-stride:{stride}"
            f"-idskip:{int(position > 0)}-se:{int(se)}-hs:{int(act == 'h_swish')}"
        )
        size, channels = out, width
    keys += [
        f"Conv_1-input:{size}x{size}x192-output:{size}x{size}x1152",
        f"AvgPool2D-input:{size}x{size}x1152-output:1x1x1152",
        "Conv_2-input:1x1x1152-output:1x1x1536",
        "Logits-input:1x1x1536-output:1000",
    ]
    return keys


def i7_keys(spec):
    """Keys of NSGANetV2's ``look_up_latency`` for the w1.0 supernet, written out by hand."""
    r = spec["r"][0]
    size = -(-r // 2)
    keys = [
        f"first_conv-input:{r}x{r}x3-output:{r // 2}x{r // 2}x16",
        f"MBConv-input:{size}x{size}x16-output:{size}x{size}x16-expand:1-kernel:3-stride:1-idskip:1-se:0",
    ]
    channels = 16
    for block in range(20):
        stage, position = divmod(block, 4)
        if position >= spec["d"][stage]:
            continue
        stride, _, se = STAGES[stage] if position == 0 else (1, *STAGES[stage][1:])
        width = (24, 40, 80, 112, 160)[stage]
        out = -(-size // stride)
        keys.append(
            f"MBConv-input:{size}x{size}x{channels}-output:{out}x{out}x{width}-expand:{spec['e'][block]}"
            f"-kernel:{spec['ks'][block]}-stride:{stride}-idskip:{int(position > 0)}-se:{int(se)}"
        )
        size, channels = out, width
    final = -(-r // 32)
    keys += [
        f"final_expand_layer-input:{final}x{final}x160-output:{final}x{final}x960",
        "feature_mix_layer-input:1x1x960-output:1x1x1280",
        "classifier-input:1280-output:1000",
    ]
    return keys


@pytest.fixture(scope="module")
def note10_path(shared_data):
    return shared_data / "CompOFA" / "latency_table@note10"


@pytest.fixture(scope="module")
def i7_path(shared_data):
    return shared_data / "nsganetv2" / "i7-8700K_lut.yaml"


@pytest.fixture(scope="module")
def note10(note10_path):
    return LatencyTable.load(note10_path, name="lut-note10")


@pytest.fixture(scope="module")
def i7(i7_path):
    return LatencyTable.load(i7_path, name="lut-i7-8700k")


def raw_means(path):
    with open(path) as handle:
        return {k: v["mean"] for k, v in yaml.safe_load(handle).items()}


@pytest.fixture(scope="module")
def w12(shared_data):
    """OFA's w1.2 supernet with the public data folder: both published tables, and the predictor."""
    return load_supernet("ofa-mbv3-w1.2", data_dir=shared_data)


def test_tables_are_read(note10, i7):
    assert note10.style == "ofa" and note10.resolutions == tuple(range(160, 225, 4))
    assert note10.stem_channels == (24,)
    assert i7.style == "nsganetv2" and i7.resolutions == tuple(range(96, 257, 4))
    assert i7.stem_channels == (16, 24)
    assert "lut-note10" in repr(note10) and "ofa" in repr(note10)


def test_note10_sum_equals_ofas_keys(note10, note10_path):
    """Every layer of 50 random w1.2 archs at every resolution is in the table; sums match by hand."""
    supernet = ofa(1.2, resolutions=note10.resolutions)
    config = supernet.net.config
    assert note10.missing_keys(config) == []
    note10.check(config)
    for r in note10.resolutions:
        means = raw_means(note10_path / f"{r}_lookup_table.yaml")
        for arch in supernet.space.sample(50, rng=r):
            arch = arch | {"r": r}
            keys = note10_keys(arch_to_ofa_config(arch))
            assert note10.layer_keys(supernet.net.shape(arch)) == keys
            assert note10.predict(arch, config) == pytest.approx(sum(means[k] for k in keys), rel=1e-12)
            assert sum(v for _, v in note10.layer_latencies(supernet.net.shape(arch))) == pytest.approx(
                note10.predict(arch, config), rel=1e-12
            )
    # CompOFA's README: smallest sub-network at 160 px 9.9 ms, largest at 224 px 92.4 ms
    net = supernet.net
    assert note10.predict(net.min_arch() | {"r": 160}) == pytest.approx(9.89, abs=0.01)
    assert note10.predict(net.max_arch() | {"r": 224}) == pytest.approx(92.40, abs=0.01)


def test_i7_sum_equals_nsganetv2_keys(i7, i7_path):
    means = raw_means(i7_path)
    for width in (1.0, 1.2):
        supernet = ofa(width, resolutions=i7.resolutions)
        assert i7.missing_keys(supernet.net.config) == []
    supernet = ofa(1.0, resolutions=i7.resolutions)
    for arch in supernet.space.sample(50, rng=0):
        keys = i7_keys(arch_to_ofa_config(arch))
        assert i7.layer_keys(supernet.net.shape(arch)) == keys
        assert i7.predict(arch, supernet.net.config) == pytest.approx(sum(means[k] for k in keys), rel=1e-12)


@pytest.mark.parametrize("key, width", [("lut-note10", 1.2), ("lut-i7-8700k", 1.0), ("lut-i7-8700k", 1.2)])
def test_latency_ranks_like_macs(key, width, note10, i7):
    table = {"lut-note10": note10, "lut-i7-8700k": i7}[key]
    supernet = ofa(width)
    archs = supernet.space.sample(200, rng=1)
    latency = [table.predict(a, supernet.net.config) for a in archs]
    tau = kendalltau(latency, [supernet.macs(a) for a in archs]).statistic
    assert tau > 0.6, tau  # measured 0.90 (note10), 0.75 (i7)


def test_wrong_width_or_resolution_is_named(note10):
    w10 = load_supernet("ofa-mbv3-w1.0").net.config
    with pytest.raises(ValueError, match="stem has 16 channels.*stem widths \\[24\\]"):
        note10.check(w10)
    with pytest.raises(ValueError, match="stem has 16 channels"):
        note10.predict(load_supernet("ofa-mbv3-w1.0").net.max_arch(), w10)
    with pytest.raises(ValueError, match="resolution 156"):
        note10.predict(load_supernet("ofa-mbv3-w1.2").net.max_arch() | {"r": 156})
    with pytest.raises(ValueError, match=r"resolution\(s\) \[156\]"):
        note10.check(ofa(1.2, resolutions=(156, 160)).net.config)


def test_default_width_needs_a_single_width_table(i7):
    with pytest.raises(ValueError, match="pass the supernet's config"):
        i7.predict(load_supernet("ofa-mbv3-w1.0").net.max_arch())


def test_missing_files_say_where_they_come_from(tmp_path):
    with pytest.raises(FileNotFoundError, match="han-cai/files"):
        LatencyTable.load(tmp_path / "latency_table@note10", name="lut-note10")
    with pytest.raises(FileNotFoundError, match="nsganetv2"):
        LatencyTable.load(tmp_path / "i7-8700K_lut.yaml", name="lut-i7-8700k")
    (tmp_path / "empty").mkdir()
    with pytest.raises(
        FileNotFoundError, match=r"no <r>_lookup_table\.yaml files.*mobilenetv3\.KNOWN_TABLES"
    ):
        LatencyTable.load(tmp_path / "empty")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: 1\n")
    with pytest.raises(ValueError, match="not a latency look-up table"):
        LatencyTable.load(bad)
    blocks = tmp_path / "blocks.yaml"
    blocks.write_text("first_conv-input:224x224x3-output:112x112x16: {mean: 1.0}\n")
    with pytest.raises(ValueError, match="no block entries"):
        LatencyTable.load(blocks)


def test_published_tables_finds_what_is_there(tmp_path):
    assert published_tables(tmp_path) == {}
    (tmp_path / "CompOFA" / "latency_table@note10").mkdir(parents=True)
    assert published_tables(tmp_path) == {"lut-note10": tmp_path / "CompOFA" / "latency_table@note10"}
    (tmp_path / "nsganetv2").mkdir()
    (tmp_path / "nsganetv2" / "i7-8700K_lut.yaml").write_text("{}")
    assert sorted(published_tables(tmp_path)) == ["lut-i7-8700k", "lut-note10"]
    # a folder holding the tables themselves
    flat = tmp_path / "flat"
    (flat / "latency_table@note10").mkdir(parents=True)
    assert published_tables(flat) == {"lut-note10": flat / "latency_table@note10"}


def test_published_tables_in_the_public_copy(shared_data):
    tables = published_tables(shared_data)
    assert set(tables) == set(KNOWN_TABLES) == {"lut-note10", "lut-i7-8700k"}
    assert LatencyTable.load(tables["lut-note10"], name="lut-note10").style == "ofa"


def test_ofa_supernets_offer_the_tables_in_their_data_dir(w12, shared_data):
    tables = w12.lookup_tables()
    assert sorted(tables) == ["lut-i7-8700k", "lut-note10"]
    for key, hardware in tables.items():
        assert isinstance(hardware, LookupTableHardware) and hardware.key == key
        assert resolve_hardware(key, w12) is hardware
        assert hardware.host() == "" and not hardware.needs_subnet
        hardware.validate()  # both cover w1.2
    assert "Note10" in tables["lut-note10"].description
    w10 = load_supernet("ofa-mbv3-w1.0", data_dir=shared_data)
    assert sorted(w10.lookup_tables()) == ["lut-i7-8700k", "lut-note10"]
    w10.lookup_tables()["lut-i7-8700k"].validate()
    with pytest.raises(ValueError, match="another width"):  # Note10's table is for w1.2 only
        w10.lookup_tables()["lut-note10"].validate()
    assert load_supernet("ofa-mbv3-w1.0").lookup_tables() == {}


def test_table_hardware_gives_the_tables_latency(w12, note10):
    hardware = w12.lookup_tables()["lut-note10"]
    archs = w12.space.sample(5, rng=2)
    timings = hardware.latencies(w12, archs, [None] * 5)
    assert [t.median_ms for t in timings] == [note10.predict(a, w12.net.config) for a in archs]
    assert all((t.spread_ms, t.repeats, t.flagged) == (0.0, 1, False) for t in timings)
    with pytest.raises(ValueError, match=r"ks_0.*\[3, 5, 7\]"):  # the table itself would not check
        hardware.latencies(w12, [archs[0] | {"ks_0": 9}], [None])


def test_tables_given_by_path(note10_path, i7_path):
    supernet = load_supernet("ofa-mbv3-w1.0", tables={"lut-mine": i7_path})
    assert list(supernet.lookup_tables()) == ["lut-mine"]
    hardware = resolve_hardware("lut-mine", supernet)
    hardware.validate()
    arch = supernet.net.max_arch()
    assert hardware.latencies(supernet, [arch], [None])[0].median_ms == pytest.approx(
        LatencyTable.load(i7_path).predict(arch, supernet.net.config)
    )
    assert str(i7_path) in hardware.description


@pytest.mark.parametrize("key", ["cpu-t1-b1", "lut-", "lut-Note10", "lut-a b"])
def test_table_keys_are_checked_when_the_supernet_is_made(note10_path, key):
    with pytest.raises(ValueError, match="look-up-table hardware key"):
        load_supernet("ofa-mbv3-w1.2", tables={key: note10_path})


def test_hardware_keys():
    assert set(KNOWN_TABLES) == {"lut-note10", "lut-i7-8700k"}
    with pytest.raises(ValueError, match="resolve_hardware"):
        HardwareConfig.from_key("lut-note10")
    assert isinstance(resolve_hardware("cpu-t1-b1", load_supernet("ofa-mbv3-w1.2")), HardwareConfig)


def test_evaluator_uses_the_table(w12, note10, tmp_path, monkeypatch):
    monkeypatch.setattr(w12, "subnet", lambda arch: pytest.fail("a table needs no sub-network"))
    store = ResultStore(tmp_path / "r.sqlite")
    evaluator = Evaluator(w12, store, progress=False)
    archs = w12.space.sample(10, rng=0)
    table = evaluator.measure(archs, ["macs", "latency_ms"], ["lut-note10"])
    rows = table[table.metric == "latency_ms"]
    assert set(rows.hardware) == {"lut-note10"} and (rows.spread == 0).all() and (rows.repeats == 1).all()
    assert not rows.flagged.any() and set(rows.host) == {""}
    by_arch = wide(table).set_index("arch")
    expected = [note10.predict(a, w12.net.config) for a in archs]
    assert np.allclose(by_arch.loc[[w12.space.key(a) for a in archs], "latency_ms@lut-note10"], expected)
    again = evaluator.measure(archs, ["latency_ms"], ["lut-note10"])
    assert again.reused.all()
    free = evaluator.free({"latency_ms@lut-note10": "min", "top1": "max", "macs": "min"})
    assert sorted(free) == ["latency_ms@lut-note10", "macs"]
    assert np.allclose(free["latency_ms@lut-note10"](archs), expected)


def test_evaluator_refuses_missing_or_wrong_tables(note10_path, tmp_path, monkeypatch):
    monkeypatch.delenv("NASTOOLS_OFA_DATA", raising=False)
    store = ResultStore(tmp_path / "r.sqlite")
    plain = load_supernet("ofa-mbv3-w1.0")
    archs = plain.space.sample(2, rng=0)
    with pytest.raises(ValueError, match="data_dir=.*tables=.*han-cai/files"):
        Evaluator(plain, store, progress=False).measure(archs, ["macs", "latency_ms"], ["lut-note10"])
    wrong_width = load_supernet("ofa-mbv3-w1.0", tables={"lut-note10": note10_path})
    with pytest.raises(ValueError, match="another width"):
        Evaluator(wrong_width, store, progress=False).measure(archs, ["macs", "latency_ms"], ["lut-note10"])
    absent = load_supernet("ofa-mbv3-w1.0", tables={"lut-note10": tmp_path / "no"})
    with pytest.raises(FileNotFoundError, match="han-cai/files"):
        Evaluator(absent, store, progress=False).measure(archs, ["macs", "latency_ms"], ["lut-note10"])
    assert len(store.measurements()) == 0


def test_a_family_supernet_that_is_not_ofas_has_no_published_tables():
    """The embedded MobileNetV3 has its own widths: OFA's tables are not offered, and the error says so."""
    tiny = MobileNetV3Supernet(
        ElasticMobileNetV3(MobileNetV3Config(resolutions=(32,), width_mult=0.5)), "t", "u"
    )
    with pytest.raises(ValueError, match=r"supernet 't' does not have; its tables are \[\]"):
        resolve_hardware("lut-note10", tiny)
