"""Configuration recorded on the classes users build, and their ``save_pretrained``.

``model.save_pretrained(folder)`` writes ``config.json`` (the constructor's arguments, and
``blocks_class``, the public class) and ``model.safetensors`` (the weights): the layout of
huggingface_hub's ``PyTorchModelHubMixin``. `blocks.hub.from_pretrained` rebuilds the same class
with the same arguments and loads the weights strictly, offline, with the core install.

Recording is explicit: the public classes (units, blocks, networks) decorate their own
``__init__`` with `records_config`, which keeps the arguments of the outermost call. Only the
classes in `SAVABLE` can be written: blocks' own are listed in one table (`blocks.hub`); a user's
subclass joins with `register_savable`. An argument that JSON cannot hold (a callable normalizer,
an outside encoder) is refused at save time, naming it; a blocks network given as an argument (a
blocks ResNet as a U-Net's encoder) is written as a nested config.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import io
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

from .checks import check_keywords, resolve_annotations
from .levels import min_sizes

__all__ = [
    "CARD_NAME", "CLASS_KEY", "CONFIG_NAME", "PUSH_TO_HUB_KEYWORDS", "SAVABLE", "WEIGHTS_NAME", "Configurable",
    "card_input_size", "dotted_name", "forget_config", "model_card", "recorded_config", "records_config", "register_savable",
    "update_config",
]

CONFIG_NAME = "config.json"
"""The file of the constructor's arguments (huggingface_hub's name)."""

WEIGHTS_NAME = "model.safetensors"
"""The file of the weights (huggingface_hub's name)."""

CLASS_KEY = "blocks_class"
"""The key of ``config.json`` that names the public class (``UNet2d``)."""

SAVABLE: dict[str, type] = {}
"""The classes ``save_pretrained`` writes and ``from_pretrained`` rebuilds, by the name ``config.json`` holds.

Filled by `register_savable`: blocks' own classes from the table `blocks.hub.SAVABLE_CLASSES`."""

Init = TypeVar("Init", bound=Callable[..., None])
Model = TypeVar("Model", bound="Configurable")


def register_savable(cls: type, *, replace: bool = False) -> type:
    """Let ``save_pretrained`` write ``cls`` and ``from_pretrained`` rebuild it, under its class name.

    A user's subclass of a blocks network is savable once registered, if its own ``__init__`` is
    decorated with `records_config` (else the recorded arguments are its parent's, which do not
    rebuild it). Usable as a class decorator.

    Args:
        cls: A class with `Configurable` among its bases.
        replace: Replace another class registered under the same name.

    Returns:
        ``cls``.

    Raises:
        ValueError: If ``cls`` is not `Configurable`, or its name is taken by another class.

    Examples:
        >>> import blocks
        >>> from blocks.configurable import register_savable, records_config
        >>> @register_savable
        ... class Tiny(blocks.UNet2d):
        ...     @records_config
        ...     def __init__(self, width: int = 4) -> None:
        ...         super().__init__(channels=(width, 2 * width), layers=1)
        >>> Tiny(width=2).config
        {'blocks_class': 'Tiny', 'width': 2}
    """
    if not (isinstance(cls, type) and issubclass(cls, Configurable)):
        raise ValueError(f"register_savable takes a subclass of a blocks class, got {cls!r}")
    taken = SAVABLE.get(cls.__name__)
    if taken is not None and taken is not cls and not replace:
        raise ValueError(
            f"register_savable: the name {cls.__name__!r} is taken by {taken.__module__}.{taken.__qualname__}; "
            "rename the class or pass replace=True"
        )
    SAVABLE[cls.__name__] = cls
    return cls


def records_config(init: Init) -> Init:
    """Decorator of a public class's ``__init__``: keep the arguments it was called with, as given.

    The outermost decorated ``__init__`` of a call wins (a subclass's over its parent's, since it
    returns last). A keyword the ``__init__`` does not take raises a TypeError that suggests the
    closest argument names (`blocks.checks.check_keywords`), for every public class at once.

    Examples:
        >>> import blocks
        >>> blocks.BlockPlain2d(4, 8, stride=2).config
        {'blocks_class': 'BlockPlain2d', 'in_planes': 4, 'out_planes': 8, 'stride': 2}
    """
    signature = inspect.signature(init)

    @functools.wraps(init)
    def recording_init(self: Any, *args: Any, **kwargs: Any) -> None:
        check_keywords(type(self).__name__, signature, kwargs)
        init(self, *args, **kwargs)
        arguments = signature.bind(self, *args, **kwargs).arguments
        self.__dict__["_config"] = {name: value for name, value in list(arguments.items())[1:]}

    return recording_init  # type: ignore[return-value]


class Configurable:
    """Mixin: the ``config`` recorded by `records_config`, and ``save_pretrained``.

    Each class's ``forward`` gets its annotations as objects (`blocks.checks.resolve_annotations`), so
    ``torch.jit.script(torch.fx.symbolic_trace(model))`` compiles the traced code.
    """

    __jit_ignored_attributes__ = ["config"]
    """What ``torch.jit.script`` leaves alone: ``config`` may raise, and TorchScript reads every other property."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "config" not in vars(cls):  # TorchScript looks for the properties it ignores in each class's own dict
            cls.config = Configurable.config  # type: ignore[method-assign]
        forward = getattr(cls, "forward", None)
        if forward is not None:
            resolve_annotations(forward)

    class_arguments: tuple[str, ...] = ()
    """Arguments whose values may be classes, written to ``config.json`` as dotted names
    (``'torch.nn.modules.conv.Conv3d'``, nnU-Net's plans' form); the class turns them back itself."""

    @property
    @torch.jit.unused
    def config(self) -> dict[str, Any]:
        """The arguments this model was built with (only those given), as written to ``config.json``.

        Raises:
            ValueError: If the class is not savable (a subclass not registered with
                `register_savable`), an argument cannot be written (see `save_pretrained`), or the
                model was changed after construction in a way its arguments do not say (pruned).
        """
        name = type(self).__name__
        if SAVABLE.get(name) is not type(self):
            raise ValueError(
                f"{name} is not a class save_pretrained can write (a subclass of a blocks class); register it "
                "with blocks.configurable.register_savable (and decorate its own __init__, if it has one, with "
                "records_config), or save its state_dict with torch.save"
            )
        return recorded_config(self)

    @classmethod
    def from_pretrained(
        cls: type[Model],
        pretrained_model_name_or_path: str | os.PathLike,
        *,
        map_location: str | torch.device = "cpu",
        strict: bool = True,
        **model_kwargs: Any,
    ) -> Model:
        """Rebuild a model that ``save_pretrained`` wrote, if it is this class or a subclass (an `AE` is a `UNet`).

        `blocks.from_pretrained` without the class check; huggingface_hub's mixin's keywords that make
        sense offline (the folder's name, ``strict``, ``model_kwargs``), plus ``map_location``.
        Downloading from the Hub (``revision``, ``token``, ...) needs huggingface_hub's mixin: a subclass
        that also has ``PyTorchModelHubMixin`` among its bases gets the mixin's loader here.

        Args:
            pretrained_model_name_or_path: The folder with ``config.json`` and ``model.safetensors``.
            map_location: Where the weights go.
            strict: Refuse weights with missing or unexpected keys.
            **model_kwargs: Constructor arguments that replace the saved ones.

        Returns:
            The model, in eval mode.

        Raises:
            ValueError: If the folder holds another class (naming it and the call that loads it), lacks a
                file, or its weights do not fit.

        Examples:
            >>> import tempfile, blocks
            >>> folder = blocks.AE2d(channels=(4, 8), layers=1).save_pretrained(tempfile.mkdtemp())
            >>> type(blocks.UNet.from_pretrained(folder)).__name__
            'AE2d'
            >>> blocks.ResNet.from_pretrained(folder)  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ...
            ValueError: ResNet.from_pretrained: ... holds a model of class AE2d, which is not ResNet or a subclass ...
        """
        mixin = getattr(super(Configurable, cls), "from_pretrained", None)
        if mixin is not None:  # a subclass that also has huggingface_hub's mixin: its loader, which downloads too
            return mixin(pretrained_model_name_or_path, map_location=map_location, strict=strict, **model_kwargs)
        from .hub import load_pretrained  # the table of savable classes sits above this file

        return load_pretrained(pretrained_model_name_or_path, map_location, strict=strict, expected=cls,
                               **model_kwargs)

    def save_pretrained(
        self,
        save_directory: str | os.PathLike,
        *,
        config: Mapping[str, Any] | None = None,
        repo_id: str | None = None,
        push_to_hub: bool = False,
        model_card_kwargs: Mapping[str, Any] | None = None,
        **push_to_hub_kwargs: Any,
    ) -> Path:
        """Write ``config.json`` (the constructor's arguments), ``model.safetensors`` (the weights) and a model card.

        The signature is huggingface_hub's ``ModelHubMixin.save_pretrained``. The model card,
        ``README.md``, is written only where the folder has none (as the mixin does, so a card of
        your own is kept): the class, the arguments, the parameter count and the first lines of
        `blocks.summary`'s table (see `model_card`). Everything is checked before anything is written.

        Args:
            save_directory: The folder; made if missing.
            config: Not accepted: the configuration is the constructor's arguments (huggingface_hub's
                mixin takes one here); None.
            repo_id: The Hub repository ``push_to_hub`` uploads to (default: the folder's name).
            push_to_hub: Upload the folder with huggingface_hub (installed separately) after writing it.
            model_card_kwargs: Extra entries of the model card: its metadata (``license``, ``tags``,
                ``datasets``, ...) and ``input_size``, the input its summary is shown for (see `model_card`).
            **push_to_hub_kwargs: With ``push_to_hub=True``, huggingface_hub's upload keywords
                (`PUSH_TO_HUB_KEYWORDS`: ``commit_message``, ``private``, ``token``, ``branch``, ...).

        Returns:
            The folder.

        Raises:
            ValueError: If the class is not savable or an argument cannot be written to JSON (a
                callable normalizer or activator, an outside encoder), naming it and what to do
                instead; if ``config`` is given; if ``repo_id`` or upload keywords come without
                ``push_to_hub=True``, or an upload keyword is not huggingface_hub's.
            ImportError: If ``push_to_hub=True`` and huggingface_hub is not installed.

        Examples:
            >>> import tempfile, torch, blocks
            >>> net = blocks.UNet2d(channels=(4, 8), layers=1)
            >>> folder = net.save_pretrained(tempfile.mkdtemp())
            >>> sorted(p.name for p in folder.iterdir())
            ['README.md', 'config.json', 'model.safetensors']
            >>> again = blocks.from_pretrained(folder)
            >>> x = torch.randn(1, 1, 9, 7)
            >>> torch.equal(again(x), net.eval()(x))
            True
        """
        from safetensors.torch import save_file

        saved = self.config
        name = type(self).__name__
        check_save_arguments(name, config, repo_id, push_to_hub, push_to_hub_kwargs)
        hub = import_hub(name) if push_to_hub else None
        card = model_card(self, saved, model_card_kwargs)
        folder = Path(save_directory)
        folder.mkdir(parents=True, exist_ok=True)
        state = {key: tensor.detach().contiguous().cpu() for key, tensor in self.state_dict().items()}
        save_file(state, folder / WEIGHTS_NAME, metadata={"format": "pt"})
        (folder / CONFIG_NAME).write_text(json.dumps(saved, indent=2) + "\n")
        if not (folder / CARD_NAME).exists():
            (folder / CARD_NAME).write_text(card)
        if hub is not None:
            upload(hub, folder, repo_id or folder.resolve().name, push_to_hub_kwargs)
        return folder


PUSH_TO_HUB_KEYWORDS = (
    "commit_message", "private", "token", "branch", "create_pr", "allow_patterns", "ignore_patterns", "delete_patterns",
)
"""The upload keywords ``save_pretrained(..., push_to_hub=True, **push_to_hub_kwargs)`` takes: huggingface_hub's
``push_to_hub``'s."""

CARD_NAME = "README.md"
"""The model card's file (huggingface_hub's name)."""

CARD_SUMMARY_LINES = 12
"""How many lines of `blocks.summary`'s table the model card shows (the header and the first layers)."""


def check_save_arguments(
    owner: str, config: Any, repo_id: Any, push_to_hub: Any, push_to_hub_kwargs: Mapping[str, Any]
) -> None:
    """Refuse what ``save_pretrained`` cannot honour: a ``config``, upload arguments without an upload, unknown ones.

    Raises:
        ValueError: Naming the argument, its value and what is allowed.
    """
    if config is not None:
        raise ValueError(
            f"{owner}.save_pretrained got config={config!r}; blocks writes the constructor's arguments "
            "(model.config) as config.json, so config must be None"
        )
    if not isinstance(push_to_hub, bool):
        raise ValueError(f"{owner}.save_pretrained got push_to_hub={push_to_hub!r}; it must be True or False")
    unknown = sorted(set(push_to_hub_kwargs) - set(PUSH_TO_HUB_KEYWORDS))
    if unknown:
        raise ValueError(
            f"{owner}.save_pretrained got unexpected keyword(s) {unknown}; the upload keywords are "
            f"{list(PUSH_TO_HUB_KEYWORDS)} (with push_to_hub=True)"
        )
    given = (["repo_id"] if repo_id is not None else []) + sorted(push_to_hub_kwargs)
    if given and not push_to_hub:
        raise ValueError(
            f"{owner}.save_pretrained got {', '.join(given)} without push_to_hub=True; they only say where and how "
            "to upload"
        )


def import_hub(owner: str) -> Any:
    """huggingface_hub, imported for an upload.

    Raises:
        ImportError: If it is not installed, saying how to install it or save locally instead.
    """
    try:
        import huggingface_hub
    except ImportError as error:
        raise ImportError(
            f"{owner}.save_pretrained(..., push_to_hub=True) needs huggingface_hub, which is not installed: "
            "pip install huggingface_hub, or save locally (push_to_hub=False) and upload the folder yourself"
        ) from error
    return huggingface_hub


def upload(hub: Any, folder: Path, repo_id: str, options: Mapping[str, Any]) -> Any:
    """Upload ``folder`` to the Hub repository ``repo_id`` (made if missing) with huggingface_hub's ``HfApi``.

    Args:
        hub: The huggingface_hub module.
        folder: The saved folder.
        repo_id: The repository.
        options: ``PUSH_TO_HUB_KEYWORDS`` given by the caller.

    Returns:
        huggingface_hub's commit information.
    """
    api = hub.HfApi(token=options.get("token"))
    api.create_repo(repo_id, repo_type="model", private=options.get("private"), exist_ok=True)
    return api.upload_folder(
        repo_id=repo_id,
        folder_path=folder,
        repo_type="model",
        commit_message=options.get("commit_message") or "Upload a blocks model",
        revision=options.get("branch"),
        create_pr=options.get("create_pr"),
        allow_patterns=options.get("allow_patterns"),
        ignore_patterns=options.get("ignore_patterns"),
        delete_patterns=options.get("delete_patterns"),
    )


def model_card(model: nn.Module, config: Mapping[str, Any], extra: Mapping[str, Any] | None = None) -> str:
    """The model card ``save_pretrained`` writes: metadata, class, arguments, parameter count, summary's first lines.

    The metadata (YAML front matter, which the Hub reads) holds ``library_name: blocks``, the tags
    ``blocks`` and ``pytorch``, and ``extra``'s entries (``license``, ``datasets``, more ``tags``, ...);
    ``extra['input_size']`` (channels and sizes, without the batch) is the input the summary is shown
    for, instead of the model's own (`card_input_size`).

    Args:
        model: The model.
        config: Its ``config``.
        extra: ``model_card_kwargs``: string keys, values JSON can write.

    Returns:
        The card's text (Markdown).

    Raises:
        ValueError: If ``extra`` is not a mapping with string keys and JSON values.
    """
    from .summary import summary  # the one import from a floor above (docs/design.md): only when saving

    extra = dict(extra or {})
    name = type(model).__name__
    if any(not isinstance(key, str) for key in extra):
        raise ValueError(f"{name}.save_pretrained got model_card_kwargs={extra!r}; its keys must be strings")
    size = tuple(extra.pop("input_size", None) or card_input_size(model))
    metadata = {"library_name": "blocks", **extra, "tags": ["blocks", "pytorch", *extra.get("tags", [])]}
    # JSON is YAML's flow style: each entry is one line the Hub's YAML reader takes.
    front = "\n".join(f"{key}: {json.dumps(_encode(name, f'model_card_kwargs[{key!r}]', value))}"
                      for key, value in metadata.items())
    with contextlib.redirect_stdout(io.StringIO()):
        table = summary(model, size).splitlines()
    first = table[:CARD_SUMMARY_LINES] + (["..."] if len(table) > CARD_SUMMARY_LINES else [])
    arguments = {key: value for key, value in config.items() if key != CLASS_KEY}
    rows = "\n".join(f"| `{key}` | `{json.dumps(value)}` |" for key, value in arguments.items()) or "| (none) | |"
    count = sum(p.numel() for p in model.parameters())
    return (
        f"---\n{front}\n---\n\n# {name}\n\n"
        f"A `{name}` of the `blocks` library, with {count:,} parameters, "
        "saved by `save_pretrained` (weights in `model.safetensors`, arguments in `config.json`).\n\n"
        f"```python\nimport blocks\n\nmodel = blocks.from_pretrained(folder)  # this folder\n```\n\n"
        f"## Arguments\n\n| argument | value |\n|---|---|\n{rows}\n\n"
        f"## Layers\n\n`blocks.summary(model, {size})`, first lines:\n\n```text\n" + "\n".join(first) + "\n```\n"
    )


def card_input_size(model: nn.Module) -> tuple[int, ...]:
    """The input (without the batch) the model card's summary is shown for: the model's own, else a small one.

    A DecoderNet's ``input_size``; otherwise ``in_planes`` channels and 64 in every dimension, or
    the smallest input the network takes (`blocks.levels.min_sizes` of its deepest map) where that is larger.
    """
    if hasattr(model, "input_size"):
        return tuple(model.input_size)
    features = getattr(model, "feature_info", None)
    least = min_sizes(features[-1]["reductions"]) if features else (1,) * model.ndim
    return (model.in_planes, *(max(64, n) for n in least))


def recorded_config(model: Configurable) -> dict[str, Any]:
    """``model``'s recorded arguments as JSON values, after ``blocks_class`` (its class name), savable or not.

    Raises:
        ValueError: If an argument cannot be written, or the model no longer matches its arguments.
    """
    name = type(model).__name__
    recorded = model.__dict__.get("_config")
    if recorded is None:
        raise ValueError(
            f"{name} was changed after it was built ({model.__dict__.get('_config_lost', 'unknown')}); "
            "its arguments no longer describe it: save its state_dict with torch.save instead"
        )
    classes = type(model).class_arguments
    return {
        CLASS_KEY: name,
        **{key: dotted_name(value) if key in classes and isinstance(value, type) else _encode(name, key, value)
           for key, value in recorded.items()},
    }


def dotted_name(cls: type) -> str:
    """The dotted name of a class, as nnU-Net's plans write it.

    Examples:
        >>> from torch import nn
        >>> dotted_name(nn.Conv3d)
        'torch.nn.modules.conv.Conv3d'
    """
    return f"{cls.__module__}.{cls.__qualname__}"


def update_config(model: nn.Module, **arguments: Any) -> None:
    """Record that ``model`` now matches these constructor arguments (after ``reset_classifier``, say)."""
    recorded = model.__dict__.get("_config")
    if recorded is not None:
        recorded.update(arguments)


def forget_config(model: nn.Module, why: str) -> None:
    """Mark ``model``'s recorded arguments as no longer describing it (after pruning, say)."""
    model.__dict__["_config"] = None
    model.__dict__["_config_lost"] = why


def _encode(owner: str, name: str, value: Any) -> Any:
    """``value`` as JSON: tuples as lists, a blocks network as its nested config; else a ValueError naming ``name``."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (tuple, list)):
        return [_encode(owner, name, v) for v in value]
    if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
        return {k: _encode(owner, name, v) for k, v in value.items()}
    if isinstance(value, Configurable):
        return value.config
    if isinstance(value, nn.Module):
        raise ValueError(
            f"{owner}: {name}={type(value).__name__} is not a blocks network, so config.json cannot rebuild it; "
            "build the model from blocks' own networks to use save_pretrained, or save its state_dict with torch.save"
        )
    raise ValueError(
        f"{owner}: {name}={value!r} cannot be written to config.json; pass a registered name instead (for a "
        "normalizer or activator: blocks.register_normalizer / register_activator, then the name), "
        "or save the state_dict with torch.save"
    )

