"""Environments: the family interface (base.py), the registry of families (registry.py),
seed splits (seeds.py), and one package per family (atari/)."""

from envs.base import ActionSpace, EnvFamily, EnvProtocol, EnvSpec, InvalidAction, UnknownEnvError, UnknownProtocolError
from envs.registry import family_of, get_family, resolve_env

__all__ = ["ActionSpace", "EnvFamily", "EnvProtocol", "EnvSpec", "InvalidAction", "UnknownEnvError",
           "UnknownProtocolError", "family_of", "get_family", "resolve_env"]
