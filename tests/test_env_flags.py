"""secli.util.env_flags.env_value reads what os.environ.get reads, at once after every change."""

from __future__ import annotations

import os

import pytest

from secli.util.env_flags import env_value

NAME = "SECLI_TEST_ENV_FLAG"


def test_unset_set_changed_and_removed_values_read_as_os_environ_does(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(NAME, raising=False)
    assert env_value(NAME) is None
    monkeypatch.setenv(NAME, "0")
    assert env_value(NAME) == "0"
    os.environ[NAME] = "späť ✓"  # non-ASCII survives the bytes round trip
    assert env_value(NAME) == os.environ.get(NAME) == "späť ✓"
    monkeypatch.setenv(NAME, "")
    assert env_value(NAME) == ""
    monkeypatch.delenv(NAME)
    assert env_value(NAME) is None


def test_the_cpu_kernel_switch_takes_effect_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from secli.kernels import cpu_kernels

    monkeypatch.setenv("SECLI_CPU_KERNELS", "off")
    assert not cpu_kernels.enabled()
    monkeypatch.setenv("SECLI_CPU_KERNELS", " No ")
    assert not cpu_kernels.enabled()
    monkeypatch.setenv("SECLI_CPU_KERNELS", "1")
    assert cpu_kernels.enabled()
    monkeypatch.delenv("SECLI_CPU_KERNELS")
    assert cpu_kernels.enabled()


def test_a_replaced_os_environ_is_read_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    """``mock.patch.object(os, "environ", {...})`` swaps the mapping itself: read that one."""
    monkeypatch.delenv(NAME, raising=False)
    monkeypatch.setattr(os, "environ", {NAME: "0"})
    assert env_value(NAME) == "0"
    monkeypatch.undo()
    assert env_value(NAME) is None
