"""The shared helpers under secli/util: one device resolver, one DDP lifecycle, one tensor reader."""

from __future__ import annotations

import pytest
import torch

from secli.util.device import resolve_device
from secli.util.distributed import distributed_session
from secli.util.errors import SecliError, SecliUsageError
from secli.util.tensors import first_tensor, logits_of


@pytest.mark.parametrize("name", [None, "", "auto"])
def test_auto_without_cuda_is_the_cpu(name: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device(name) == torch.device("cpu")


def test_cuda_index_is_kept_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(SecliUsageError, match="only 2 CUDA devices"):
        resolve_device("cuda:2")


def test_cuda_index_without_cuda_is_a_runtime_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SecliError, match="CUDA is not available") as caught:
        resolve_device("cuda:0")
    assert caught.value.exit_code == 1


@pytest.mark.parametrize("name", ["gpu", "tpu:0", "mps"])
def test_unknown_or_unsupported_device_is_a_usage_error(name: str) -> None:
    with pytest.raises(SecliUsageError) as caught:
        resolve_device(name)
    assert caught.value.exit_code == 2
    assert "cuda:N" in str(caught.value)


def test_distributed_session_disabled_joins_nothing() -> None:
    with distributed_session(False, "cpu", "profile") as context:
        assert context is None
    assert not torch.distributed.is_initialized()


def test_distributed_session_outside_torchrun_names_the_command(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    with (
        pytest.raises(SecliUsageError, match="torchrun") as caught,
        distributed_session(True, "cpu", "visualize-excitation"),
    ):
        pass
    assert "visualize-excitation" in str(caught.value)


def test_first_tensor_reads_tuples_lists_and_logits_dicts() -> None:
    t = torch.zeros(2, 3)
    aux = torch.ones(2, 3)
    assert first_tensor(t) is t
    assert first_tensor((t, aux)) is t
    assert first_tensor([t]) is t
    assert first_tensor({"logits": t, "aux": aux}) is t
    assert first_tensor({"aux": aux}) is None
    assert first_tensor(()) is None
    assert first_tensor("text") is None


def test_logits_of_refuses_what_is_not_a_tensor() -> None:
    with pytest.raises(TypeError, match="not a tensor of class scores"):
        logits_of({"features": 1})


def test_vocabulary_is_what_blocks_and_help_use() -> None:
    from commands.options import OutputFormat
    from secli.kernels.gates import GATE_MODULES
    from secli.util.vocabulary import GATES, OUTPUT_FORMATS

    assert tuple(GATE_MODULES) == GATES
    assert tuple(f.value for f in OutputFormat) == OUTPUT_FORMATS


def test_number_lists_take_strings_and_python_lists() -> None:
    from secli.util.number_lists import parse_float_list, parse_int_list, parse_str_list

    assert parse_int_list("2, 3,,4", "--stages") == (2, 3, 4)
    assert parse_int_list([5], "--stages") == (5,)
    assert parse_int_list(4, "--stages") == (4,)
    assert parse_int_list("", "--stages") is None
    assert parse_int_list(None, "--stages") is None
    with pytest.raises(SecliUsageError, match="--stages must be whole numbers"):
        parse_int_list("2,x", "--stages")
    with pytest.raises(SecliUsageError, match="whole numbers"):
        parse_int_list(True, "--stages")
    assert parse_float_list("1,1.5", "--scales") == [1.0, 1.5]
    assert parse_float_list([2], "--scales") == [2.0]
    with pytest.raises(SecliUsageError, match="--scales must be numbers"):
        parse_float_list("1,big", "--scales")
    assert parse_str_list(" se, sk ,") == ["se", "sk"]
    assert parse_str_list(["eca"]) == ["eca"]
