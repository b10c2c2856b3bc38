"""An fsspec filesystem that wraps another one and makes chosen calls fail, for fault-injection tests.

::

    rules = [FaultRule("cat_file", ConnectionResetError, paths="*/meta/*", times=2)]
    location = faulty_location("memory://root", rules)   # a StorageLocation whose .fs is the wrapper
    faulty = location.fs                                   # FaultyFileSystem: .injected, .events

Every call the rules do not fail goes to the wrapped filesystem unchanged. The wrapper is an instance of
a subclass made for the wrapped filesystem's class, with its class-level behaviour (``protocol``,
``root_marker``, ``_strip_protocol``, ``async_impl``): code that looks at ``type(fs)`` sees what it
would see on the wrapped class. Methods the wrapped class implements itself are delegated to it; the
generic ones fsspec provides in ``AbstractFileSystem`` (``cat`` on the memory filesystem, say) run on
the wrapper, as they would on the wrapped filesystem, and meet the faults through the primitives they
call; a rule that names a generic method makes it fail too. A rule naming a method the filesystem
does not have is refused, so a rule can never silently match nothing.

Rule method names:

- any filesystem method: ``cat_file``, ``pipe_file``, ``ls``, ``find``, ``info``, ``cp_file``,
  ``rm_file``, ``rm``, ``makedirs``, ... (for async filesystems, ``cat_file`` also matches the
  coroutine ``_cat_file``);
- ``open`` (any mode), ``open:r`` (opening for reading), ``open:w`` (for writing, appending, creating);
- ``read``, ``write``, ``close``: calls on a file object returned by ``open`` (``close`` of a file
  opened for writing is where object stores upload: after a failed close the file is not in the
  store, even on filesystems that create it at open);
- ``*``: every delegated method and file operation (not the generic methods running on the wrapper,
  whose calls to the primitives fail instead).
"""

from __future__ import annotations

import contextlib
import copy
import errno
import fnmatch
import inspect
import random
import threading
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import attrs
from fsspec import AbstractFileSystem
from fsspec.asyn import AsyncFileSystem

from milvus_backup_lib.storage.location import StorageLocation

__all__ = ["FaultEvent", "FaultRule", "FaultyFileSystem", "faulty_location", "s3_error"]

#: What a rule raises: an exception class (instantiated with a message naming the call), an instance
#: (a copy is raised each time), or a factory ``(method, path) -> exception``.
ErrorSpec = type[BaseException] | BaseException | Callable[[str, str], BaseException]

_FILE_OPERATIONS = frozenset({"open", "open:r", "open:w", "read", "write", "close"})
_READ_METHODS = ("read", "read1", "readinto", "readinto1", "readline", "readlines")
_WRITE_METHODS = ("write", "writelines")
#: Keyword arguments of fsspec methods that hold paths.
_PATH_KEYWORDS = ("path", "path1", "path2", "paths", "lpath", "rpath", "src", "dst")
#: AbstractFileSystem functions the wrapper never delegates (identity, pickling, its own ``open``).
_NOT_DELEGATED = frozenset({"__init__", "__eq__", "__hash__", "__reduce__", "__dask_tokenize__", "open"})


def _methods(value: str | Iterable[str]) -> frozenset[str]:
    return frozenset({value} if isinstance(value, str) else value)


@attrs.define(eq=False)
class FaultRule:
    """Which calls fail, with what, and how often.

    A call matches when its method is one of ``methods`` and one of its paths (both for a copy)
    matches ``paths``: a glob (``fnmatch``, ``*`` crosses ``/``) against the path as the wrapped
    filesystem normalizes it, or a predicate; None matches any path. Of the matching calls the first
    ``after`` pass, then up to ``times`` fail (None: all), each with ``probability`` drawn from a
    ``random.Random(seed)`` of its own, so a run is reproducible.
    """

    methods: frozenset[str] = attrs.field(converter=_methods)
    error: ErrorSpec = ConnectionResetError
    paths: str | Callable[[str], bool] | None = None
    after: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    times: int | None = None
    probability: float = attrs.field(default=1.0, validator=[attrs.validators.ge(0), attrs.validators.le(1)])
    seed: int = 0
    #: Matching calls seen, and failures injected, so far.
    calls: int = attrs.field(default=0, init=False)
    injected: int = attrs.field(default=0, init=False)
    _random: random.Random = attrs.field(init=False)

    @_random.default
    def _make_random(self) -> random.Random:
        return random.Random(self.seed)

    def _matches_path(self, paths: list[str]) -> bool:
        if self.paths is None:
            return True
        if isinstance(self.paths, str):
            return any(fnmatch.fnmatchcase(p, self.paths) for p in paths)
        return any(self.paths(p) for p in paths)

    def _should_fail(self) -> bool:
        """Count one matching call; whether it fails. (Called under the filesystem's lock.)"""
        self.calls += 1
        if self.calls <= self.after:
            return False
        if self.times is not None and self.injected >= self.times:
            return False
        if self.probability < 1.0 and self._random.random() >= self.probability:
            return False
        self.injected += 1
        return True

    def _make_error(self, method: str, path: str) -> BaseException:
        error = self.error
        if isinstance(error, BaseException):
            return copy.copy(error)
        if isinstance(error, type) and issubclass(error, BaseException):
            return error(f"injected fault: {method} {path}")
        return error(method, path)


@attrs.frozen
class FaultEvent:
    """One injected failure."""

    method: str
    path: str
    error: type[BaseException]


class _FaultyFile:
    """A file object of the wrapped filesystem, with reads, writes and close subject to the rules."""

    def __init__(
        self, owner: FaultyFileSystem, file: Any, path: str, *, writing: bool, existed: bool
    ) -> None:
        self._owner = owner
        self._file = file
        self._path = path
        self._writing = writing
        self._existed = existed
        self._closed_by_fault = False

    def _check(self, method: str) -> None:
        self._owner._inject(method, [self._path])

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._file, name)
        if name in _READ_METHODS or name in _WRITE_METHODS:
            method = "read" if name in _READ_METHODS else "write"

            def checked(*args: Any, **kwargs: Any) -> Any:
                self._check(method)
                return value(*args, **kwargs)

            return checked
        return value

    def close(self) -> None:
        if self._closed_by_fault or getattr(self._file, "closed", False):
            return
        try:
            self._check("close")
        except BaseException:
            self._closed_by_fault = True
            if self._writing:
                self._discard()
            raise
        self._file.close()

    def _discard(self) -> None:
        """After a failed upload nothing of the file may be in the store, as after a failed PUT."""
        discard = getattr(self._file, "discard", None)
        if callable(discard):  # buffered object-store files: drop the buffer and any multipart upload
            discard()
        else:
            with contextlib.suppress(Exception):
                self._file.close()
        if not self._existed:
            # Some filesystems (memory) create the file at open; an overwritten one cannot be restored.
            with contextlib.suppress(Exception):
                self._owner.fs.rm_file(self._path)

    @property
    def closed(self) -> bool:
        return self._closed_by_fault or bool(getattr(self._file, "closed", False))

    def __enter__(self) -> _FaultyFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __iter__(self) -> Any:
        while line := self.readline():
            yield line


class FaultyFileSystem(AbstractFileSystem):
    """``fs`` with the calls the ``rules`` select failing (see the module docstring)."""

    protocol = "faulty"
    cachable = False  # every wrapper has its own rules and counters
    mirror_sync_methods = False  # the wrapped filesystem's own sync methods are delegated to
    _subclasses: ClassVar[dict[type, type[FaultyFileSystem]]] = {}
    _subclass_lock: ClassVar[threading.Lock] = threading.Lock()
    #: The method names delegated to the wrapped filesystem (set per subclass).
    _delegated: ClassVar[frozenset[str]] = frozenset()

    def __new__(cls, fs: AbstractFileSystem, rules: Iterable[FaultRule] = ()) -> FaultyFileSystem:
        if cls is FaultyFileSystem:
            cls = _subclass_for(fs)
        return super().__new__(cls)

    def __init__(self, fs: AbstractFileSystem, rules: Iterable[FaultRule] = ()) -> None:
        # AbstractFileSystem.__init__ is not called: the wrapped filesystem's state (dircache,
        # transaction, loop) is reached through __getattr__, so there is only one of each.
        self.__dict__["fs"] = fs
        self.rules = list(rules)
        self.events: list[FaultEvent] = []
        self._lock = threading.Lock()
        named = {m for rule in self.rules for m in rule.methods} - _FILE_OPERATIONS - {"*"}
        for name in sorted(named - self._delegated):
            self._intercept(name)

    def _intercept(self, name: str) -> None:
        """Make a rule naming ``name`` fire although the class does not delegate it.

        A generic fsspec method (``exists`` on the memory filesystem, say) keeps running on the
        wrapper; a method only the wrapped filesystem has is called there. Either way the wrapper is
        an instance attribute, which leaves ``type(self)`` as it is for code that inspects the class.
        """
        implementation: Callable[..., Any]
        if callable(getattr(type(self), name, None)):
            implementation = getattr(self, name)  # a generic fsspec method, bound to the wrapper
        elif callable(getattr(self.fs, name, None)):
            implementation = getattr(self.fs, name)
        else:
            raise ValueError(
                f"{type(self.fs).__name__} has no method {name!r}: name one of its methods, a file "
                f"operation ({', '.join(sorted(_FILE_OPERATIONS))}) or '*'"
            )
        fault = name[1:] if inspect.iscoroutinefunction(implementation) and name.startswith("_") else name

        if inspect.iscoroutinefunction(implementation):

            async def intercepted_async(*args: Any, **kwargs: Any) -> Any:
                self._inject(fault, self._paths_of(args, kwargs))
                return await implementation(*args, **kwargs)

            self.__dict__[name] = intercepted_async
        else:

            def intercepted(*args: Any, **kwargs: Any) -> Any:
                self._inject(fault, self._paths_of(args, kwargs))
                return implementation(*args, **kwargs)

            self.__dict__[name] = intercepted

    def __getattr__(self, name: str) -> Any:
        fs = self.__dict__.get("fs")
        if fs is None or name.startswith("__"):
            raise AttributeError(name)
        return getattr(fs, name)

    def __repr__(self) -> str:
        return f"FaultyFileSystem({self.fs!r}, {len(self.rules)} rule(s))"

    # The metaclass records the constructor arguments here; report the wrapped filesystem's.
    @property
    def storage_options(self) -> Any:
        return self.fs.storage_options

    @storage_options.setter
    def storage_options(self, value: Any) -> None:
        pass

    @property
    def storage_args(self) -> Any:
        return self.fs.storage_args

    @storage_args.setter
    def storage_args(self, value: Any) -> None:
        pass

    @property
    def injected(self) -> int:
        """How many failures have been injected so far."""
        with self._lock:
            return len(self.events)

    def _normalize(self, path: str) -> str:
        stripped = type(self.fs)._strip_protocol(path)
        return str(stripped[0] if isinstance(stripped, list) else stripped)

    def _paths_of(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[str]:
        candidates: list[Any] = list(args[:2]) + [kwargs[k] for k in _PATH_KEYWORDS if k in kwargs]
        paths: list[str] = []
        for candidate in candidates:
            if isinstance(candidate, str):
                paths.append(self._normalize(candidate))
            elif isinstance(candidate, list | tuple) and all(isinstance(p, str) for p in candidate):
                paths.extend(self._normalize(p) for p in candidate)
        return paths

    def _inject(self, method: str, paths: list[str], also: tuple[str, ...] = ()) -> None:
        """Raise the error of the first rule that fails this call, if any."""
        names = {method, *also}
        with self._lock:
            for rule in self.rules:
                if not (names & rule.methods or "*" in rule.methods) or not rule._matches_path(paths):
                    continue
                if rule._should_fail():
                    path = paths[0] if paths else ""
                    error = rule._make_error(method, path)
                    self.events.append(FaultEvent(method, path, type(error)))
                    break
            else:
                return
        raise error

    def open(self, path: str, mode: str = "rb", *args: Any, **kwargs: Any) -> Any:
        """The wrapped filesystem's file, with ``read``/``write``/``close`` subject to the rules."""
        paths = self._paths_of((path,), {})
        writing = any(c in mode for c in "wax+")
        self._inject("open", paths, also=("open:w",) if writing else ("open:r",))
        existed = writing and bool(self.fs.exists(path))
        file = self.fs.open(path, mode, *args, **kwargs)
        return _FaultyFile(self, file, paths[0] if paths else path, writing=writing, existed=existed)


def _delegate(name: str) -> Callable[..., Any]:
    def method(self: FaultyFileSystem, *args: Any, **kwargs: Any) -> Any:
        self._inject(name, self._paths_of(args, kwargs))
        return getattr(self.fs, name)(*args, **kwargs)

    method.__name__ = method.__qualname__ = name
    return method


def _delegate_async(name: str) -> Callable[..., Any]:
    async def method(self: FaultyFileSystem, *args: Any, **kwargs: Any) -> Any:
        self._inject(name[1:], self._paths_of(args, kwargs))
        return await getattr(self.fs, name)(*args, **kwargs)

    method.__name__ = method.__qualname__ = name
    return method


def _subclass_for(fs: AbstractFileSystem) -> type[FaultyFileSystem]:
    """The FaultyFileSystem subclass mirroring ``type(fs)``'s class-level behaviour (one per class)."""
    target = type(fs)
    with FaultyFileSystem._subclass_lock:
        made = FaultyFileSystem._subclasses.get(target)
        if made is not None:
            return made
        namespace: dict[str, Any] = {
            "protocol": target.protocol,
            "root_marker": target.root_marker,
            "sep": target.sep,
            "async_impl": target.async_impl,
            "blocksize": target.blocksize,
            "_strip_protocol": classmethod(lambda cls, path: target._strip_protocol(path)),
            "_parent": classmethod(lambda cls, path: target._parent(path)),
            "_get_kwargs_from_urls": staticmethod(target._get_kwargs_from_urls),
            "__module__": __name__,
        }
        delegated = set()
        for name, generic in vars(AbstractFileSystem).items():
            if not inspect.isfunction(generic) or name in _NOT_DELEGATED:
                continue
            # Implemented by the class, or a sync method fsspec mirrored from a coroutine on the instance.
            if getattr(target, name) is not generic or name in vars(fs):
                namespace[name] = _delegate(name)
                delegated.add(name)
        if target.async_impl:
            for name in dir(AsyncFileSystem):
                generic = getattr(AsyncFileSystem, name)
                if not (name.startswith("_") and inspect.iscoroutinefunction(generic)):
                    continue
                if getattr(target, name) is not generic:
                    namespace[name] = _delegate_async(name)
                    delegated.add(name[1:])
                else:
                    # Keep the generic coroutine itself, so identity checks on the class still see it.
                    namespace[name] = generic
        namespace["_delegated"] = frozenset(delegated)
        made = type(FaultyFileSystem)(f"Faulty{target.__name__}", (FaultyFileSystem,), namespace)
        FaultyFileSystem._subclasses[target] = made
        return made


def faulty_location(
    url: str, rules: Iterable[FaultRule], storage_options: dict[str, Any] | None = None
) -> StorageLocation:
    """A :class:`StorageLocation` for ``url`` whose filesystem is a :class:`FaultyFileSystem`.

    The location is otherwise the plain one (same protocol, root, options): only its ``fs`` differs.
    """
    options = dict(storage_options or {})
    plain = StorageLocation(url, options)
    return StorageLocation(url, options, filesystem=FaultyFileSystem(plain.fs, rules))


def s3_error(code: str = "SlowDown", status: int = 503) -> Callable[[str, str], BaseException]:
    """A factory for what s3fs raises when S3 answers ``status`` with error ``code``.

    s3fs turns botocore's ``ClientError`` into an ``OSError`` (``FileNotFoundError`` for NoSuchKey,
    ``PermissionError`` for AccessDenied, ``OSError(EBUSY)`` for SlowDown...) with the ClientError as
    ``__cause__``; this builds the same pair (botocore comes with moto, a test dependency).
    """
    from botocore.exceptions import ClientError

    def make(method: str, path: str) -> BaseException:
        cause = ClientError(
            {
                "Error": {"Code": code, "Message": f"injected {code}"},
                "ResponseMetadata": {"HTTPStatusCode": status},
            },
            method,
        )
        translated: OSError
        if status == 404:
            translated = FileNotFoundError(errno.ENOENT, f"injected {code}", path)
        elif status == 403:
            translated = PermissionError(errno.EACCES, f"injected {code}", path)
        else:
            translated = OSError(errno.EBUSY if status == 503 else errno.EIO, f"injected {code}")
        translated.__cause__ = cause
        return translated

    return make
