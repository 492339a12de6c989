"""ASGI middleware of the app's own, in front of Gradio's routes (passed through `launch(app_kwargs=...)`).

- `ClientAddress`: each request's client address, for the login throttle (Gradio hands the auth callable only the
  user name and password).
- `InputCount`: a call with too few values is refused naming the endpoint's parameters. Gradio's own answer to
  it lists its component objects with their memory addresses ("<gradio.components.textbox.Textbox object at
  0x...>"), which tells an API client nothing; upstream, `Blocks.validate_inputs` could name the parameters.
"""

import contextvars
import json

CLIENT = contextvars.ContextVar("client", default="?")  # the address the current request came from


class ClientAddress:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope.get("client"):
            CLIENT.set(scope["client"][0])
        await self.app(scope, receive, send)


class InputCount:
    """Refuses `POST /gradio_api/call/NAME` and `/gradio_api/queue/join` whose `data` holds fewer values than the
    endpoint takes, with HTTP 422 and the parameter names. `parameters(api_name or fn_index)` gives the names, or
    None for an event this does not know (let through as it came)."""

    PATHS = ("/gradio_api/call/", "/gradio_api/queue/join", "/gradio_api/run/")
    MAX_BODY = 1 << 20  # larger bodies are left to Gradio's own limits

    def __init__(self, app, parameters):
        self.app, self.parameters = app, parameters

    async def __call__(self, scope, receive, send):
        path = scope.get("path", "")
        if scope["type"] != "http" or scope.get("method") != "POST" or not path.startswith(self.PATHS):
            return await self.app(scope, receive, send)
        chunks, more = [], True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        problem = self.check(path, body) if len(body) <= self.MAX_BODY else None
        if problem:
            reply = json.dumps({"detail": problem, "error": problem}).encode()
            await send({"type": "http.response.start", "status": 422,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(reply)).encode())]})
            return await send({"type": "http.response.body", "body": reply})
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def check(self, path: str, body: bytes) -> str | None:
        try:
            payload = json.loads(body)
        except ValueError:
            return None  # Gradio says what is wrong with it
        if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
            return None
        key = path.rsplit("/", 1)[-1] if path.startswith(("/gradio_api/call/", "/gradio_api/run/")) else payload.get("fn_index")
        names = self.parameters(key)
        if names is None or len(payload["data"]) >= len(names):
            return None
        missing = ", ".join(names[len(payload["data"]):])
        return f"{len(names)} values expected ({', '.join(names)}); got {len(payload['data'])}: missing {missing}."
