"""A device that does not exist here fails at once, with a message, before a run directory exists."""

from __future__ import annotations

import json

import pytest
import torch

from icrl.cli import main
from icrl.train.factory import SetupError, check_device


def test_cpu_is_accepted():
    assert check_device("cpu") == torch.device("cpu")


def test_a_name_that_is_not_a_device():
    with pytest.raises(SetupError, match="'gpu' is not a torch device"):
        check_device("gpu")


def test_cuda_without_a_cuda_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SetupError, match="'cuda': no CUDA device is available .*use device cpu instead"):
        check_device("cuda")


def test_a_cuda_index_beyond_the_machines_devices(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(SetupError, match="'cuda:3': this machine has 1 CUDA device"):
        check_device("cuda:3")
    assert check_device("cuda:0") == torch.device("cuda:0")


def _train(run_dir, tiny_cli, *extra):
    main(["train", "icrl/TMaze-v0", *tiny_cli, "--total-env-steps", "30", "--eval-every", "0",
          "--checkpoint-every", "0", "--run-dir", str(run_dir), *extra])


def test_train_eval_and_resume_name_the_missing_device(tmp_path, tiny_cli, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit, match="icrl train: device 'cuda'"):
        _train(tmp_path / "never", tiny_cli, "--device", "cuda")
    assert not (tmp_path / "never").exists()

    run = tmp_path / "run"
    _train(run, tiny_cli)
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "device": "cuda"}))  # as if trained on a GPU
    capsys.readouterr()
    with pytest.raises(SystemExit, match="icrl eval: device 'cuda'"):
        main(["eval", str(run), "--trials", "2"])
    with pytest.raises(SystemExit, match="icrl resume: device 'cuda'"):
        main(["resume", str(run), "--total-env-steps", "60"])  # more than the 40 steps made: not finished
    main(["eval", str(run), "--trials", "2", "--device", "cpu"])
    assert json.loads(capsys.readouterr().out)["device"] == "cpu"
