"""Hot list routes without FastAPI's per-request dependency solving.

FastAPI solves a route's dependency tree on every request: for ``GET /recommend`` 12 query
parameters, the key's scope check and the shopper cookie, 7 dependants, each resolved field by
field. With the engine stubbed (constant answers, 300 requests/s, three interleaved pairs on 2
cores) the framework's CPU per request fell from 2.38 to 1.94 ms for ``/recommend`` and from 2.41
to 1.90 ms for ``/search`` when that solving was skipped. :class:`LeanRoute` answers such a
route with the same validation in one pass:

- the endpoint is declared as usual, so the OpenAPI docs are FastAPI's own, but it takes only
  ``request: Request``, one pydantic model of the query string (``Annotated[Model, Query()]``) and
  optionally ``caller: Caller = ListKey`` (the key's policy; or name it in ``dependencies=[...]``);
- per request the policy runs on the key the :class:`~shopsense.service.middleware.KeyGate`
  already verified, the query string is validated by the model in one call (a 422 in FastAPI's
  format on failure), and the endpoint's pydantic answer is serialised once (no second validation
  against ``response_model``: the endpoint builds that model itself).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Annotated, Any, get_args, get_origin, get_type_hints

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.params import Depends
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError

from shopsense.service.deps import verified_key


class LeanRoute(APIRoute):
    """An :class:`APIRoute` whose requests skip FastAPI's dependency solving (see the module)."""

    def get_route_handler(self) -> Callable[[Request], Any]:
        endpoint = self.endpoint
        hints = get_type_hints(endpoint, include_extras=True)
        policy: Callable[..., Any] | None = None
        model: type[BaseModel] | None = None
        roles: dict[str, str] = {}
        for name, p in inspect.signature(endpoint).parameters.items():
            hint = hints.get(name)
            if hint is Request:
                roles[name] = "request"
            elif get_origin(hint) is Annotated and _is_model(get_args(hint)[0]):
                model, roles[name] = get_args(hint)[0], "params"
            elif isinstance(p.default, Depends) and p.default.dependency is not None:
                policy, roles[name] = p.default.dependency, "caller"
            else:
                raise TypeError(f"LeanRoute {self.path}: cannot supply parameter {name!r} (see shopsense.service.lean)")
        for dep in self.dependencies:
            if dep.dependency is not None:
                policy = dep.dependency
        if policy is None or model is None:
            raise TypeError(f"LeanRoute {self.path}: needs a query model and a key policy (ListKey, ReadKey, ...)")
        check, params_model = policy, model

        async def handle(request: Request) -> Response:
            cookies = Response()  # what the policy sets (the page key's shopper cookie) goes on the answer
            caller = await check(request, cookies, verified_key(request))
            try:
                params = params_model.model_validate(dict(request.query_params))
            except ValidationError as e:
                raise RequestValidationError(
                    [{**err, "loc": ("query", *err["loc"])} for err in e.errors(include_url=False)]
                ) from None
            given = {"request": request, "params": params, "caller": caller}
            result = await endpoint(**{name: given[role] for name, role in roles.items()})
            response = (
                result
                if isinstance(result, Response)
                else Response(result.model_dump_json(), media_type="application/json")
            )
            response.raw_headers.extend(h for h in cookies.raw_headers if h[0] == b"set-cookie")
            return response

        return handle


def _is_model(tp: Any) -> bool:
    return inspect.isclass(tp) and issubclass(tp, BaseModel)


def lean_get(router: APIRouter, path: str, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``@router.get(path, **kwargs)``, answered by a :class:`LeanRoute`."""

    def register(endpoint: Callable[..., Any]) -> Callable[..., Any]:
        router.add_api_route(path, endpoint, methods=["GET"], route_class_override=LeanRoute, **kwargs)
        return endpoint

    return register
