"""The model a server serves, swapped as a whole on reload (`POST /admin/reload`, SIGHUP).

Requests take the model reference once (`current`), so a reload swaps it atomically while requests in flight
finish on the old one; at most one load runs at a time, and a new model that cannot be loaded leaves the
current one serving.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import anyio

from engage.errors import EngageError
from engage.scoring.contract import ScoringModel
from engage.serving.parsing import RequestError

log = logging.getLogger("engage.serving")


def describe(error: BaseException) -> str:
    return str(error) if isinstance(error, EngageError) else f"{type(error).__name__}: {error}"


class ModelSlot:
    """The model being served, swapped as a whole on reload; at most one load at a time."""

    def __init__(self, loader: Callable[[], ScoringModel], source: str):
        self._loader = loader
        self.source = source
        self.model: ScoringModel | None = None
        self.state = "loading"  # loading -> ready | failed
        self.error: str | None = None
        self._loading = threading.Lock()

    def load_initial(self, on_failure: Callable[[str], None]) -> None:
        """Start-up load (runs in a thread): on failure the
        state says why and `on_failure` stops the server."""
        with self._loading:
            started = time.perf_counter()
            log.info("loading model %s", self.source)
            try:
                model = self._loader()
            except Exception as e:  # any failure means there is nothing to serve
                self.state, self.error = "failed", f"cannot serve model {self.source}: {describe(e)}"
                log.error("%s", self.error)
                on_failure(self.error)
                return
            self.model, self.state = model, "ready"
            log.info("model %s version %s (embedder %s) loaded and warmed in %.1f s; ready",
                     model_name(model), model.version, model.embedder, time.perf_counter() - started)

    def current(self) -> ScoringModel:
        model = self.model
        if model is None:
            reason = self.error or "the model is still loading; retry shortly"
            raise RequestError(503, [(None, reason)], headers={"Retry-After": "5"})
        return model

    async def reload(self) -> tuple[ScoringModel | None, ScoringModel]:
        """Load and warm the model again (e.g. a new champion)
        and swap it in; the old one serves until then."""
        if not self._loading.acquire(blocking=False):
            raise RequestError(409,
                               [("model", "a model is already being loaded; try again when it finishes")])
        try:
            started = time.perf_counter()
            new = await anyio.to_thread.run_sync(self._loader)
        except EngageError as e:
            log.error("reload of %s refused, the current model keeps serving: %s", self.source, e)
            raise RequestError(409, [
                ("model", f"the new model was refused and the current one keeps serving: {e}")]) from None
        except Exception as e:
            log.exception("reload of %s failed, the current model keeps serving", self.source)
            raise RequestError(500, [("model", f"loading the new model failed ({describe(e)}); "
                                               "the current one keeps serving")]) from None
        finally:
            self._loading.release()
        old, self.model, self.state, self.error = self.model, new, "ready", None
        log.info("reloaded %s in %.1f s: version %s -> %s", self.source, time.perf_counter() - started,
                 getattr(old, "version", None), new.version)
        return old, new

    async def reload_logged(self) -> None:
        try:
            await self.reload()
        except RequestError:
            pass  # already logged; the old model keeps serving


def model_name(model: ScoringModel) -> str:
    return str((getattr(model, "info", None) or {}).get("name") or "engage")
