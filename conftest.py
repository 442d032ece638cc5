"""Shared by the tests and the docstring examples (``--doctest-modules`` collects ``blocks/`` too).

The examples of ``register_normalizer``, ``register_activator`` and ``register_model`` show the public
calls only, with no clean-up lines for the reader to skip: the fixture below forgets what an example
registered, so the registries every other test sees stay the package's own.
"""

from __future__ import annotations

import pytest
from _pytest.doctest import DoctestItem


@pytest.fixture(autouse=True)
def registries_restored_after_a_doctest(request):
    if not isinstance(request.node, DoctestItem):
        yield
        return
    from blocks import layers, registry

    registries = [layers.NORMALIZERS, layers.ACTIVATORS, registry._MODELS]
    saved = [dict(entries) for entries in registries]
    yield
    for entries, before in zip(registries, saved):
        entries.clear()
        entries.update(before)
