"""Per-request regions: the single-flight memo, detection at most once, targets, crops, PNGs."""

from __future__ import annotations

import asyncio
import base64
import io

import numpy as np
import pytest
from PIL import Image

from gateway.analyze.regions import Memo, NoFaceFound, Region, Regions
from tests.gateway.analyze.fakes import FACE_IN_PERSON, FACE_OUTSIDE, PERSON, FakeBackends, scene


def close(box, expected, tol=2):
    return box is not None and all(abs(a - b) <= tol for a, b in zip(box, expected))


def run(coro):
    return asyncio.run(coro)


# --- Memo ------------------------------------------------------------------------------------


def test_memo_runs_each_key_once_for_concurrent_callers():
    calls = []

    async def work(key):
        calls.append(key)
        await asyncio.sleep(0.02)
        return f"result {key}"

    async def go():
        memo = Memo()
        results = await asyncio.gather(*(memo.get(k, lambda k=k: work(k)) for k in ["a", "b", "a", "a", "b"]))
        again = await memo.get("a", lambda: work("a"))
        return results, again, memo.keys()

    results, again, keys = run(go())
    assert results == ["result a", "result b", "result a", "result a", "result b"]
    assert again == "result a" and sorted(calls) == ["a", "b"] and keys == ["a", "b"]


def test_memo_shares_a_failure_and_survives_a_cancelled_waiter():
    calls = []

    async def failing():
        calls.append(1)
        await asyncio.sleep(0.02)
        raise RuntimeError("boom")

    async def go():
        memo = Memo()
        impatient = asyncio.ensure_future(memo.get("k", failing))
        await asyncio.sleep(0)
        impatient.cancel()  # one waiter gives up; the work goes on for the others
        outcomes = await asyncio.gather(memo.get("k", failing), memo.get("k", failing), return_exceptions=True)
        return outcomes, impatient.cancelled()

    outcomes, cancelled = run(go())
    assert cancelled and calls == [1]
    assert all(isinstance(o, RuntimeError) and str(o) == "boom" for o in outcomes)


# --- Regions with blob-finding fake detectors ----------------------------------------------


def regions(img=None, backends=None):
    backends = backends or FakeBackends()
    return Regions(img or scene(), backends, Memo()), backends


def test_person_is_detected_once_however_many_ask_at_once():
    r, backends = regions()

    async def go():
        return await asyncio.gather(*(r.person() for _ in range(6)), r.face("prominent_person"), r.face("prominent_person"))

    found = run(go())
    assert backends.calls["person"] == 1 and backends.calls["face"] == 1
    assert all(close(d.box, PERSON) for d in found[:6])
    assert close(found[6].box, FACE_IN_PERSON) and found[7] == found[6]


def test_face_context_decides_where_to_look():
    r, backends = regions()

    async def go():
        return await r.face("prominent_person"), await r.face("whole_image")

    in_person, anywhere = run(go())
    assert close(in_person.box, FACE_IN_PERSON)  # searched in the person crop, mapped back to the image
    assert close(anywhere.box, FACE_OUTSIDE)  # the largest face of the whole image
    assert backends.calls == {"person": 1, "face": 2}


def test_without_a_person_the_face_search_covers_the_whole_image_once():
    r, backends = regions(scene(person=False))

    async def go():
        return await r.face("prominent_person"), await r.face("whole_image"), await r.region("prominent_person", "x")

    in_person, anywhere, person_region = run(go())
    assert in_person == anywhere and close(anywhere.box, FACE_OUTSIDE)
    assert backends.calls == {"person": 1, "face": 1}  # both contexts mean the same search
    assert person_region.bbox is None and person_region.image.size == (400, 300)  # the fallback


def test_targets_give_the_right_crops():
    img = scene()
    r, _ = regions(img)

    async def go():
        return [await r.region(t, "prominent_person") for t in ("whole_image", "prominent_person", "prominent_face")]

    whole, person, face = run(go())
    assert whole.bbox is None and whole.image is img
    assert close(person.bbox, PERSON) and person.image.size == (person.bbox[2] - person.bbox[0], person.bbox[3] - person.bbox[1])
    assert close(face.bbox, FACE_IN_PERSON)
    np.testing.assert_array_equal(np.asarray(face.image), np.asarray(img.crop(face.bbox)))


def test_no_face_means_the_face_target_is_skipped():
    r, _ = regions(scene(faces=False))
    with pytest.raises(NoFaceFound, match="no face found in the prominent person"):
        run(r.region("prominent_face", "prominent_person"))
    with pytest.raises(NoFaceFound, match="whole image"):
        run(r.region("prominent_face", "whole_image"))


def test_png_is_the_exact_crop_and_encoded_once():
    img = scene()
    r, _ = regions(img)
    region = r.crop((10, 20, 110, 70))

    async def go():
        return await asyncio.gather(r.png(region), r.png(r.crop((10, 20, 110, 70))), r.png(Region(img)))

    first, second, whole = run(go())
    assert first == second and whole is None
    decoded = Image.open(io.BytesIO(base64.b64decode(first)))
    assert decoded.format == "PNG" and decoded.size == (100, 50)
    np.testing.assert_array_equal(np.asarray(decoded.convert("RGB")), np.asarray(img.crop((10, 20, 110, 70))))
    assert [k for k in r.memo.keys() if k[0] == "png"] == [("png", (10, 20, 110, 70))]


def test_a_failing_detector_fails_every_waiter_once():
    r, backends = regions(backends=FakeBackends(fail={"person": RuntimeError("detector down")}))

    async def go():
        return await asyncio.gather(r.person(), r.region("prominent_person", "x"), r.face("prominent_person"),
                                    return_exceptions=True)

    outcomes = run(go())
    assert all(isinstance(o, RuntimeError) for o in outcomes)
    assert backends.calls["person"] == 1 and backends.calls["face"] == 0
