"""`--device`: auto picks what is present; a device this machine lacks is a clear error up front."""

import pytest
import torch

from sage.errors import ConfigError
from sage.model.device import resolve_device


def test_auto_is_cuda_only_when_present():
    assert resolve_device(None) == resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_missing_cuda_is_reported():
    with pytest.raises(ConfigError, match="no CUDA device"):
        resolve_device("cuda:0")


def test_nonsense_is_reported():
    with pytest.raises(ConfigError, match="--device must be"):
        resolve_device("gpu please")


def test_cli_rejects_a_missing_device_before_loading(capsys):
    from sage.cli.app import main

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert main(["info", "--device", "cuda"]) == 2
    assert "no CUDA device" in capsys.readouterr().err
