"""``camstream --check-config``: every setting checked without starting anything."""

from __future__ import annotations

from pathlib import Path

from camera import BaseCamera, SourceError, create_camera
from camera.detect.spec import GATED, YOLO, parse_spec
from camera.record import RecordSettings
from camera.record.formats import COPY
from camera.redact import redact_url

from ..auth.state import proxies_and_origins, read_users
from ..auth.users import PLACEHOLDER
from ..config.layers import Settings
from ..config.plan import make_plan
from ..config.values import ConfigError, command
from ..integrations.mqtt import parse_broker


def check(settings: Settings) -> str:
    """What ``--check-config`` says about good settings; :class:`ConfigError` or SourceError for bad ones.

    Everything is checked that can be without starting: the values, the
    cameras' names and sources (a missing file, an unknown scheme), the
    detectors' specs and the broker's URL. Devices and URLs are not opened.
    """
    plan = make_plan(settings)
    built: dict[str, BaseCamera] = {}
    for name, camera in plan.cameras.items():
        if isinstance(camera.source, str):
            try:
                built[name] = create_camera(name, camera.source, **dict(camera.options))
            except SourceError as exc:
                raise ConfigError(f"camera {name!r}: {exc}") from None
        else:
            built[name] = camera.source
        spec = parse_spec(camera.detector.spec) if camera.detector else None
        model = spec.inner if spec and spec.kind == GATED else spec
        if model and model.kind == YOLO and not Path(model.target).is_file():
            raise ConfigError(f"camera {name!r}: detector {spec.text!r}: no such model file: {model.target}")
    if settings.config.get("MQTT"):
        parse_broker(str(settings.config["MQTT"]))
    users = read_users(settings.config, settings.users, list(plan.cameras))
    proxies_and_origins(settings.config)
    lines = [f"{settings.file or 'the settings'}: good, {len(plan.cameras)} camera(s)"]
    for name, camera in plan.cameras.items():
        options = dict(camera.options)
        detector = camera.detector
        parts = [redact_url(str(camera.source)), f"{options['fps']:g} fps" if options["fps"] else "source's fps",
                 f"detect {detector.spec}" + (f" on {redact_url(detector.source)}" if detector.source else "")
                 if detector else "",
                 f"record {camera.record.mode} ({recorded_as(built.get(name), camera.record)})"
                 if camera.record else ""]
        lines.append(f"  {name}: " + ", ".join(part for part in parts if part))
    admins = sum(user.role == "admin" for user in users.values())
    lines.append(f"  sign-in: {len(users)} user(s), {admins} admin(s)" if users and not settings.config["NO_AUTH"]
                 else "  sign-in: none (anyone who reaches the port watches)")
    lines += [f"  to do: user {user.name!r} has no password yet: put a hash from {command('hash-password')} "
              f"in place of {PLACEHOLDER} (until then nobody signs in as {user.name})"
              for user in users.values() if user.placeholder]
    return "\n".join(lines)


def recorded_as(camera: BaseCamera | None, record: RecordSettings) -> str:
    """How a camera's recording will be stored, as the recorder decides it (see Recorder.copying): by copy for
    a camera that passes its own video through, unless RECORD_COPY is off; else in RECORD_FORMAT."""
    media = getattr(camera, "media", None) if record.copy else None
    if media is None:
        return record.format
    if media.expected:
        return COPY
    return f"{COPY} if it sends H.264 or H.265, else {record.format}"
