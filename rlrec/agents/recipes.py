"""Recipes: each ``--algo``'s hyperparameters, read from its zoo-format YAML and checked.

Hyperparameters live in ``rlrec/hyperparams/<algo>.yml`` in RL Baselines3 Zoo's format: one section
per Gymnasium id (or ``default``) holding the constructor's keyword arguments plus the zoo's own keys
``n_timesteps``, ``n_envs``, ``env_kwargs``, ``policy`` and ``policy_kwargs`` (a string such as
``"dict(net_arch=[64])"``). The zoo ``eval``s that string; we parse it (:func:`parse_policy_kwargs`)
so that a YAML file cannot run code.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import torch
import yaml
from stable_baselines3.common.callbacks import BaseCallback

from rlrec.agents.registry import DEFAULT_ENV_ID, algo_class, algo_spec
from rlrec.utils.schedules import schedule_from

__all__ = [
    "RunHyperparams",
    "accepted_keys",
    "constructor_defaults",
    "hyperparams_file",
    "load_hyperparams",
    "parse_callbacks",
    "parse_class",
    "parse_policy_kwargs",
    "policy_kwargs_sources",
    "schedule_start",
    "split_hyperparams",
    "validate_hyperparams",
]

#: Keys of the zoo's YAML format that are not constructor arguments.
ZOO_KEYS = frozenset({"n_timesteps", "n_envs", "env_kwargs", "policy", "policy_kwargs", "callback"})
#: Zoo keys ``rlrec train`` does not implement (wrappers, normalisation, frame stacking).
UNSUPPORTED_ZOO_KEYS = frozenset(
    {"normalize", "frame_stack", "env_wrapper", "vec_env_wrapper", "monitor_kwargs"}
)
#: Constructor arguments the training run sets itself.
RESERVED_KEYS = frozenset({"self", "env", "seed", "tensorboard_log", "verbose", "_init_setup_model"})
#: Hyperparameters the zoo accepts as ``"lin_<initial value>"``: a linear decay to 0.
SCHEDULE_KEYS = frozenset({"learning_rate", "clip_range", "clip_range_vf"})

#: Hyperparameters that name a class (the zoo ``eval``s them; we parse them, see :func:`parse_class`).
CLASS_KEYS = frozenset({"replay_buffer_class"})

_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def hyperparams_file(algo: str) -> Path:
    """The shipped YAML of ``algo``: ``rlrec/hyperparams/<algo>.yml``."""
    spec = algo_spec(algo)
    return Path(str(resources.files("rlrec") / "hyperparams" / f"{spec.name}.yml"))


def load_hyperparams(
    algo: str,
    env_id: str = DEFAULT_ENV_ID,
    overrides: Mapping[str, Any] | None = None,
    path: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """The YAML section for ``env_id`` (else ``default``) with ``overrides`` on top, validated.

    :param algo: one of :data:`ALGOS`.
    :param env_id: the section to read, as the zoo does (``rlrec/MovieLens-v0``).
    :param overrides: values that replace the YAML's (``--hyperparams k=v``). Numeric strings become
        floats because YAML 1.1 reads ``1e-4`` as a string.
    :param path: another YAML file in the same format; default :func:`hyperparams_file`.
    :raises ValueError: unknown or unsupported key, or no section for ``env_id``.
    """
    source = Path(path) if path is not None else hyperparams_file(algo)
    with open(source, encoding="utf-8") as handle:
        sections = yaml.safe_load(handle) or {}
    if not isinstance(sections, dict):
        raise ValueError(f"{source}: expected a mapping of env ids to hyperparameters")
    section = sections.get(env_id, sections.get("default"))
    if section is None:
        raise ValueError(f"{source}: no section for {env_id!r} and no 'default' section")
    hyperparams = {key: _coerce(value) for key, value in dict(section).items()}
    defaults = constructor_defaults(algo)
    for key, value in (overrides or {}).items():
        value = _coerce(value)
        reference = hyperparams.get(key, defaults.get(key))
        # A word where a number belongs (batch_size=abc) would only fail deep inside training.
        if _is_number(reference) and isinstance(value, str) and key not in SCHEDULE_KEYS:
            raise ValueError(f"hyperparameter {key}: expected a number, got {value!r}")
        hyperparams[key] = value
    validate_hyperparams(algo, hyperparams)
    return hyperparams


def constructor_defaults(algo: str) -> dict[str, Any]:
    cls = algo_class(algo)
    config = getattr(cls, "config_class", None)
    if config is not None:  # our learners: a config dataclass holds the hyperparameters
        return {f.name: f.default for f in dataclasses.fields(config) if f.default is not dataclasses.MISSING}
    params = inspect.signature(cls).parameters
    return {name: p.default for name, p in params.items() if p.default is not inspect.Parameter.empty}


def _hyperparameter_names(cls: type) -> set[str]:
    """What ``cls``'s constructor takes as hyperparameters: its config dataclass's fields (our
    learners) or its keyword parameters (SB3's)."""
    config = getattr(cls, "config_class", None)
    if config is not None:
        return {f.name for f in dataclasses.fields(config)} | {"device"}
    return set(inspect.signature(cls).parameters)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_widths(value: Any, key: str) -> None:
    """Layer widths: a list of whole numbers >= 1 (SB3's dict form for actor-critic is let through)."""
    if isinstance(value, Mapping):
        for name, widths in value.items():
            _check_widths(widths, f"{key}.{name}")
        return
    if not isinstance(value, list | tuple) or not all(
        _is_number(width) and float(width).is_integer() and 1 <= width <= MAX_WIDTH for width in value
    ):
        raise ValueError(
            f"hyperparameter {key}: expected layer widths like [64, 64], each 1 to {MAX_WIDTH:,}; "
            f"got {value!r}"
        )


def schedule_start(value: Any) -> float | None:
    """The number a hyperparameter starts at: itself, or x of ``"lin_<x>"``; None if neither."""
    if isinstance(value, str):
        text = value.removeprefix("lin_")
        return float(text) if _FLOAT.match(text.strip()) else None
    return float(value) if _is_number(value) else None


def _check_device(value: Any) -> None:
    try:
        torch.device("cpu" if value == "auto" else value)
    except (RuntimeError, TypeError):
        raise ValueError(f"hyperparameter device: 'auto', 'cpu', 'cuda' or 'cuda:N', got {value!r}") from None


def accepted_keys(algo: str) -> set[str]:
    """Constructor arguments of ``algo``'s class a YAML may set, plus the zoo keys it understands.

    Parameters whose names start with ``_`` are the class's own business, never hyperparameters.
    """
    params = _hyperparameter_names(algo_class(algo)) - RESERVED_KEYS
    params = {name for name in params if not name.startswith("_")}
    zoo = set(ZOO_KEYS)
    if "policy_kwargs" not in params:
        # Our learners have no SB3 policy: they take their network size (net_arch) directly.
        zoo -= {"policy", "policy_kwargs"}
    return params | zoo


#: Hyperparameters every algo shares, with the interval they must lie in (inclusive unless noted).
RANGES: dict[str, tuple[float, float, str]] = {
    "gamma": (0.0, 1.0, "in [0, 1]"),
    "tau": (0.0, 1.0, "in (0, 1]"),
    "exploration_fraction": (0.0, 1.0, "in [0, 1]"),
    "exploration_initial_eps": (0.0, 1.0, "in [0, 1]"),
    "exploration_final_eps": (0.0, 1.0, "in [0, 1]"),
    "gae_lambda": (0.0, 1.0, "in [0, 1]"),
    "dropout": (0.0, 1.0, "in [0, 1)"),
}
#: Hyperparameters that are counts: whole numbers, at least the given value.
COUNTS = {"batch_size": 1, "buffer_size": 0, "learning_starts": 0, "n_steps": 1, "n_epochs": 1,
          "target_update_interval": 1, "n_envs": 1, "gradient_steps": -1, "n_quantiles": 1}  # fmt: skip
#: The largest counts a model of one machine can be built with; past them NumPy or torch would
#: end in an allocation traceback (or a silent overflow) instead of a message.
COUNT_LIMITS = {"batch_size": 2**20, "buffer_size": 10**8, "n_steps": 2**20, "n_envs": 2**14,
                "n_epochs": 10**4, "gradient_steps": 10**4, "n_quantiles": 1024}  # fmt: skip
#: Widest accepted layer.
MAX_WIDTH = 2**16
#: Hyperparameters that must be numbers > 0 (``"lin_<x>"`` schedules: x > 0): a negative
#: max_grad_norm reverses every gradient, a learning rate of 0 learns nothing.
POSITIVE = ("learning_rate", "max_grad_norm", "clip_range", "clip_range_vf")
#: Hyperparameters that must be numbers >= 0.
NON_NEGATIVE = ("ent_coef", "vf_coef")


def validate_hyperparams(algo: str, hyperparams: Mapping[str, Any]) -> None:
    """``ValueError`` naming the first key ``algo`` does not accept, or a value out of its range."""
    known = accepted_keys(algo)
    for key in hyperparams:
        if key in UNSUPPORTED_ZOO_KEYS:
            raise ValueError(f"hyperparameter {key!r} (an RL Zoo option) is not supported by rlrec train")
        if key not in known:
            raise ValueError(f"unknown hyperparameter {key!r} for {algo} (known: {', '.join(sorted(known))})")
    for key, (low, high, words) in RANGES.items():
        value = hyperparams.get(key)
        if value is None:
            continue
        inside = _is_number(value) and low <= value <= high
        if key == "tau":
            inside = inside and value > low
        if key == "dropout":
            inside = inside and value < high
        if not inside:
            raise ValueError(f"hyperparameter {key}: must be a number {words}, got {value!r}")
    for key, least in COUNTS.items():
        value = hyperparams.get(key)
        if value is None:
            continue
        if not (_is_number(value) and float(value).is_integer() and value >= least):
            raise ValueError(f"hyperparameter {key}: must be a whole number >= {least}, got {value!r}")
        most = COUNT_LIMITS.get(key, 2**62)
        if value > most:
            raise ValueError(f"hyperparameter {key}: at most {most:,} on one machine, got {value!r}")
    for key in POSITIVE + NON_NEGATIVE:
        value = hyperparams.get(key)
        if value is None:
            continue
        number = schedule_start(value)
        if number is None:
            continue  # not a number: the schedule parser names what is expected
        if key in POSITIVE and not (number is not None and 0 < number < math.inf):
            raise ValueError(
                f"hyperparameter {key}: must be a number > 0 (or lin_<x> with x > 0), got {value!r}"
            )
        if key in NON_NEGATIVE and not (number is not None and 0 <= number < math.inf):
            raise ValueError(f"hyperparameter {key}: must be a number >= 0, got {value!r}")
    if "net_arch" in hyperparams:
        _check_widths(hyperparams["net_arch"], "net_arch")
    if "device" in hyperparams:
        _check_device(hyperparams["device"])
    if "policy_kwargs" in hyperparams:
        policy_kwargs = parse_policy_kwargs(hyperparams["policy_kwargs"])
        if "net_arch" in policy_kwargs:
            _check_widths(policy_kwargs["net_arch"], "policy_kwargs net_arch")
        extractor = policy_kwargs.get("features_extractor_kwargs")
        if isinstance(extractor, Mapping) and "features_dim" in extractor:
            _check_widths([extractor["features_dim"]], "policy_kwargs features_dim")
    for key in CLASS_KEYS & set(hyperparams):
        parse_class(hyperparams[key], key)
    policy = hyperparams.get("policy")
    if isinstance(policy, str) and "." in policy:
        parse_class(policy, "policy")
    if "callback" in hyperparams:
        parse_callbacks(hyperparams["callback"])


def parse_callbacks(value: Any) -> list[type]:
    """The zoo's ``callback`` key (one class or a list of them, without arguments) as rlrec
    callback classes; any other class is refused, as for ``policy``."""
    names = value if isinstance(value, list) else [value]
    classes = [parse_class(name, "callback") for name in names if name is not None]

    for cls in classes:
        if not issubclass(cls, BaseCallback):
            raise ValueError(f"hyperparameter callback: {cls.__name__} is not an SB3 callback")
    return classes


@dataclass
class RunHyperparams:
    """A validated hyperparameter section split into what goes where.

    :param n_timesteps: the zoo's training budget (``None`` when the YAML does not give one).
    :param n_envs: number of environments stepped together (zoo default 1).
    :param env_kwargs: extra keyword arguments of the environment constructor.
    :param model_kwargs: keyword arguments of the learner's constructor, ready to pass.
    :param callbacks: the zoo's ``callback`` classes, run first in ``learn``.
    """

    n_timesteps: int | None
    n_envs: int
    env_kwargs: dict[str, Any]
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    callbacks: list[type] = field(default_factory=list)


def split_hyperparams(algo: str, hyperparams: Mapping[str, Any]) -> RunHyperparams:
    """Separate the zoo keys from the constructor's and convert values the way the zoo does.

    Conversions: ``policy_kwargs`` string -> dict; ``train_freq`` list -> tuple;
    ``"lin_<x>"`` schedules -> a linear decay from ``x`` (``learning_rate``, ``clip_range``).
    """
    values = dict(hyperparams)
    n_timesteps = _count(values.pop("n_timesteps", None), "n_timesteps")
    n_envs = _count(values.pop("n_envs", 1), "n_envs")
    if n_envs is None or n_envs < 1:
        raise ValueError(f"hyperparameter n_envs must be >= 1, got {n_envs}")
    callbacks = parse_callbacks(values.pop("callback")) if "callback" in values else []
    env_kwargs = values.pop("env_kwargs", None) or {}
    if not isinstance(env_kwargs, dict):
        raise ValueError(f"hyperparameter env_kwargs must be a mapping, got {env_kwargs!r}")
    spec = algo_spec(algo)
    if spec.family == "sb3":
        values.setdefault("policy", "MlpPolicy")
    if "policy_kwargs" in values:
        values["policy_kwargs"] = parse_policy_kwargs(values["policy_kwargs"])
    if isinstance(values.get("policy"), str) and "." in values["policy"]:
        values["policy"] = parse_class(values["policy"], "policy")  # the zoo's custom-policy form
    for key in CLASS_KEYS & values.keys():
        values[key] = parse_class(values[key], key)
    if isinstance(values.get("train_freq"), list):
        values["train_freq"] = tuple(values["train_freq"])
    for key in SCHEDULE_KEYS & values.keys():
        values[key] = _schedule(key, values[key])
    return RunHyperparams(
        n_timesteps=n_timesteps,
        n_envs=n_envs,
        env_kwargs=dict(env_kwargs),
        model_kwargs=values,
        callbacks=callbacks,
    )


def _count(value: Any, key: str) -> int | None:
    """A whole number given as ``2000``, ``2e3`` or ``"2e3"`` (the zoo writes ``!!float 1e5``)."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"hyperparameter {key}: expected a whole number, got {value!r}") from None
    if not number.is_integer():
        raise ValueError(f"hyperparameter {key}: expected a whole number, got {value!r}")
    return int(number)


def parse_policy_kwargs(text: str | Mapping[str, Any]) -> dict[str, Any]:
    """Read the zoo's ``policy_kwargs`` string without ``eval``.

    Accepts ``dict(k=v, ...)`` or ``{"k": v}`` with literal values (nested dicts too), plus classes of
    ``torch.nn`` and ``torch.optim`` written as the zoo does: ``nn.ReLU``, ``th.nn.Tanh``, ``th.optim.Adam``.
    """
    if isinstance(text, Mapping):
        return dict(text)
    return {key: _literal(node, text) for key, node in _policy_kwargs_entries(text)}


def policy_kwargs_sources(text: str) -> dict[str, str]:
    """``{key: source text of its value}`` of a zoo ``policy_kwargs`` string (what ``rlrec tune``
    keeps when it changes other entries), read by the same walk as :func:`parse_policy_kwargs`."""
    entries = _policy_kwargs_entries(text)
    return {key: ast.get_source_segment(text.strip(), node) or "" for key, node in entries}


def _parse_expression(text: str, what: str) -> ast.expr:
    """``text`` as one Python expression (never evaluated); ``ValueError`` naming ``what``."""
    try:
        return ast.parse(text.strip(), mode="eval").body
    except SyntaxError as exc:
        raise ValueError(f"{what}: cannot parse {text!r}: {exc.msg}") from None


def _policy_kwargs_entries(text: Any) -> list[tuple[str, ast.expr]]:
    """The top-level ``(key, value node)`` pairs of ``dict(k=v, ...)`` or ``{"k": v}``."""
    if not isinstance(text, str):
        raise ValueError(f"policy_kwargs must be a string like 'dict(net_arch=[64])', got {text!r}")
    tree = _parse_expression(text, "policy_kwargs")
    if isinstance(tree, ast.Call) and _is_mapping_node(tree):
        return [(str(keyword.arg), keyword.value) for keyword in tree.keywords]
    if isinstance(tree, ast.Dict):
        keys = [key.value if isinstance(key, ast.Constant) else None for key in tree.keys]
        if not all(isinstance(key, str) for key in keys):
            raise ValueError(f"policy_kwargs: keys must be names, got {text!r}")
        return [(str(key), value) for key, value in zip(keys, tree.values)]
    raise ValueError(f"policy_kwargs: expected dict(...) or {{...}}, got {text!r}")


def _is_mapping_node(node: ast.expr) -> bool:
    if isinstance(node, ast.Call):
        return isinstance(node.func, ast.Name) and node.func.id == "dict" and not node.args
    return isinstance(node, ast.Dict)


def _literal(node: ast.expr, text: str) -> Any:
    """A literal, a (nested) ``dict(...)`` / ``{...}`` / list, a ``torch.nn`` member, or an rlrec class."""
    component = _rlrec_class(node)
    if component is not None:
        return component
    if isinstance(node, ast.Call) and _is_mapping_node(node):
        return {kw.arg: _literal(kw.value, text) for kw in node.keywords}
    if isinstance(node, ast.Dict):
        return {
            _literal(key, text) if key is not None else None: _literal(value, text)
            for key, value in zip(node.keys, node.values)
        }
    if isinstance(node, ast.List | ast.Tuple):
        items = [_literal(item, text) for item in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    dotted = _dotted_name(node)
    if dotted is not None:
        parts = dotted.split(".")
        # nn.ReLU, th.nn.Tanh, th.optim.Adam ...: only members of torch.nn / torch.optim, nothing else.
        if len(parts) in (2, 3) and parts[-2] in {"nn", "optim"} and parts[0] in {parts[-2], "th", "torch"}:
            namespace = getattr(torch, parts[-2])
            if isinstance(getattr(namespace, parts[-1], None), type):
                return getattr(namespace, parts[-1])
        if dotted in {"True", "False", "None"}:
            return ast.literal_eval(node)
        raise ValueError(f"policy_kwargs: unsupported name {dotted!r} in {text!r}")
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise ValueError(
            f"policy_kwargs: only literals and torch.nn / torch.optim names are allowed in {text!r}"
        ) from None


def _rlrec_class(node: ast.expr) -> type | None:
    """``importlib.import_module('rlrec.nn').Name``: a class of rlrec's, written so that the zoo,
    which ``eval``s these strings in a module where ``importlib`` is imported and ``rlrec`` is
    not, resolves it too. Only modules of the ``rlrec`` package are imported."""
    if not (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Call)):
        return None
    call = node.value
    if _dotted_name(call.func) != "importlib.import_module" or len(call.args) != 1 or call.keywords:
        return None
    module_name = call.args[0].value if isinstance(call.args[0], ast.Constant) else None
    if not isinstance(module_name, str) or not (module_name == "rlrec" or module_name.startswith("rlrec.")):
        raise ValueError(f"import_module({module_name!r}): only rlrec modules may be named")
    try:
        value = getattr(importlib.import_module(module_name), node.attr)
    except (ImportError, AttributeError):
        raise ValueError(f"{module_name}.{node.attr}: no such class") from None
    if not isinstance(value, type):
        raise ValueError(f"{module_name}.{node.attr}: not a class")
    return value


def parse_class(text: str | type, key: str) -> type:
    """A class named in a YAML value: ``importlib.import_module('rlrec.nn').Name`` (the zoo's form,
    see :func:`_rlrec_class`) or a dotted path ``rlrec.nn.Name``; a class is returned as it is."""
    if isinstance(text, type):
        return text
    if not isinstance(text, str):
        raise ValueError(f"hyperparameter {key}: expected a class name, got {text!r}")
    tree = _parse_expression(text, f"hyperparameter {key}")
    dotted = _dotted_name(tree)
    if dotted is not None and dotted.startswith("rlrec.") and "." in dotted[6:]:
        module_name, _, name = dotted.rpartition(".")
        tree = ast.parse(f"importlib.import_module({module_name!r}).{name}", mode="eval").body
    try:
        found = _rlrec_class(tree)
    except ValueError as exc:
        raise ValueError(f"hyperparameter {key}: {exc}") from None
    if found is None:
        raise ValueError(
            f"hyperparameter {key}: expected importlib.import_module('rlrec....').Name "
            f"or rlrec.<module>.Name, got {text!r}"
        )
    return found


def _dotted_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        head = _dotted_name(node.value)
        return None if head is None else f"{head}.{node.attr}"
    return None


def _coerce(value: Any) -> Any:
    """Numeric strings (YAML 1.1 reads ``1e-4`` as ``"1e-4"``) become floats; the rest is kept."""
    if isinstance(value, str) and _FLOAT.match(value.strip()):
        return float(value)
    return value


def _schedule(key: str, value: Any) -> Any:

    return schedule_from(value, key) if isinstance(value, str) else value
