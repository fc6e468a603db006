"""Trial files: validation, round trip of every dtype/shape (dotted keys too), atomic writes."""

from __future__ import annotations

import os

import numpy as np
import pytest

from icrl.replay import format as fmt
from icrl.replay.format import load_trial, save_trial, validate_trial


def test_round_trip_all_dtypes_shapes_and_dotted_keys(tmp_path, make_trial):
    t = 7
    trial = make_trial(t, terminated=True)
    rng = np.random.default_rng(0)
    dtypes = [np.float16, np.float32, np.float64, np.int8, np.int16, np.int32, np.int64,
              np.uint8, np.uint16, np.uint32, np.uint64, np.bool_, np.complex64]
    for i, dt in enumerate(dtypes):
        shape = [(t + 1,), (t + 1, 3), (t + 1, 2, 3, 1)][i % 3]
        trial[f"obs.d{i}.{np.dtype(dt).name}"] = (rng.normal(size=shape) * 50).astype(dt)
    trial["obs.pos.x"] = rng.normal(size=(t + 1, 2)).astype(np.float32)  # nested Dict flattened with dots
    trial["obs.name.npy"] = np.zeros(t + 1, np.int8)  # a key that itself looks like a member name
    path = save_trial(tmp_path / "a.npz", trial)
    loaded = load_trial(path)
    assert sorted(loaded) == sorted(trial)
    for key, value in trial.items():
        assert loaded[key].dtype == value.dtype, key
        assert loaded[key].shape == value.shape, key
        np.testing.assert_array_equal(loaded[key], value, err_msg=key)


def test_round_trip_box_and_multibinary_actions(tmp_path, make_trial):
    trial = make_trial(4)
    trial["action"] = np.linspace(-1, 1, 4 * 2, dtype=np.float32).reshape(4, 2)
    loaded = load_trial(save_trial(tmp_path / "b.npz", trial))
    np.testing.assert_array_equal(loaded["action"], trial["action"])
    assert validate_trial(loaded) == 4


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda tr: tr.pop("reward"), "'reward'"),
        (lambda tr: tr.pop("action"), "'action'"),
        (lambda tr: tr.update({"obs.image": np.zeros((5, 2), np.uint8)}), "'obs.image'.*T \\+ 1 = 6"),
        (lambda tr: tr.update({"prev_action": tr["prev_action"][:-1]}), "'prev_action'"),
        (lambda tr: tr.update({"action": tr["action"][:-1]}), "'action'"),
        (lambda tr: tr.update({"reward": tr["reward"][:, None]}), "'reward'.*shape"),
        (lambda tr: tr.update({"reward": tr["reward"].astype(np.int64)}), "'reward'.*float"),
        (lambda tr: tr.update({"terminated": tr["terminated"].astype(np.float32)}), "'terminated'.*bool"),
        (lambda tr: tr["terminated"].__setitem__(1, True), "only the last"),
        (lambda tr: tr.update({"obs.s": np.array(["a"] * 6, dtype=object)}), "'obs.s'.*dtype"),
        (lambda tr: tr.update({"obs.s": np.array(["abc"] * 6)}), "'obs.s'.*dtype"),
        (lambda tr: tr.update({"obs/x": np.zeros(6)}), "'obs/x'"),
        (lambda tr: tr.update({"file": np.zeros(6)}), "'file'.*reserved"),
        (lambda tr: tr.update({"mask": np.zeros(6)}), "'mask'.*reserved"),
        (lambda tr: tr.update({"obs.c": np.float32(1.0)}), "'obs.c'"),
        (lambda tr: tr.update({"obs.l": [1, 2, 3, 4, 5, 6]}), "'obs.l'.*ndarray"),
    ],
)
def test_validation_errors_name_the_bad_key(make_trial, edit, match):
    trial = make_trial(5)
    edit(trial)
    with pytest.raises(ValueError, match=match):
        validate_trial(trial)


def test_zero_length_and_no_observation_rejected(make_trial):
    trial = make_trial(3)
    with pytest.raises(ValueError, match="T >= 1"):
        validate_trial({k: v[:0] if k in fmt.TRANSITION_KEYS else v[:1] for k, v in trial.items()})
    with pytest.raises(ValueError, match="no observation key"):
        validate_trial({k: trial[k] for k in fmt.TRANSITION_KEYS})


def test_save_rejects_non_npz_name_and_invalid_trial_leaves_nothing(tmp_path, make_trial):
    with pytest.raises(ValueError, match=r"\.npz"):
        save_trial(tmp_path / "a.npy", make_trial(3))
    bad = make_trial(3)
    bad["reward"] = bad["reward"][:2]
    with pytest.raises(ValueError):
        save_trial(tmp_path / "a.npz", bad)
    assert list(tmp_path.iterdir()) == []


def test_failed_write_leaves_no_file_and_no_temp(tmp_path, make_trial, monkeypatch):
    def crash(f, **arrays):
        f.write(b"PK\x03\x04 half an archive")
        raise OSError("disk full")

    monkeypatch.setattr(fmt.np, "savez_compressed", crash)
    with pytest.raises(OSError, match="disk full"):
        save_trial(tmp_path / "c.npz", make_trial(3))
    assert list(tmp_path.iterdir()) == []


def test_temp_name_is_hidden_and_not_npz(tmp_path):
    tmp = fmt.temp_path_for(tmp_path / "x.npz")
    assert tmp.parent == tmp_path
    assert tmp.name.startswith(".") and not tmp.name.endswith(".npz")


def test_overwrite_is_atomic_replace(tmp_path, make_trial):
    path = save_trial(tmp_path / "d.npz", make_trial(3, marker=1))
    save_trial(path, make_trial(4, marker=2))
    assert load_trial(path)["reward"].shape == (4,)
    assert sorted(os.listdir(tmp_path)) == ["d.npz"]


def test_fsync_option(tmp_path, make_trial):
    path = save_trial(tmp_path / "e.npz", make_trial(3), fsync=True)
    assert load_trial(path)["action"].shape == (3,)


def test_load_rejects_npy_and_garbage(tmp_path):
    npy = tmp_path / "a.npz"
    with open(npy, "wb") as f:
        np.save(f, np.zeros(3))
    with pytest.raises(ValueError, match="not an .npz"):
        load_trial(npy)
    garbage = tmp_path / "g.npz"
    garbage.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(Exception):  # noqa: B017 - numpy's exact error type is an implementation detail
        load_trial(garbage)
