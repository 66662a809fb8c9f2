"""The operation registry: task validation (clear 400s) and seed 002's available_operations."""

from __future__ import annotations

import pytest

from gateway.analyze.operations import OPERATIONS, available_operations, validate_tasks
from gateway.analyze.schemas import AnalysisTask
from intake.errors import ClientError

SEED_TYPES = [
    "detect_bounding_box",
    "embed_clip_vit_b_32",
    "embed_dino_v2",
    "embed_dino_v3",
    "classify",
    "describe_image",
]


def task(oid="t", type_="embed_clip_vit_b_32", **params):
    return AnalysisTask(operation_id=oid, type=type_, params=params)


def refused(tasks, max_tasks=32) -> ClientError:
    with pytest.raises(ClientError) as info:
        validate_tasks(tasks, max_tasks)
    assert info.value.status == 400
    return info.value


def test_every_seed_operation_is_registered():
    assert list(OPERATIONS) == [*SEED_TYPES, "embed_clip"]  # seed 002's, in its order, then the CLIP by name


def test_available_operations_has_seed_002s_shape():
    ops = available_operations().model_dump()["operations"]
    assert ops["detect_bounding_box"] == {
        "description": "Detects a bounding box for a specified target.",
        "allowed_targets": ["prominent_person", "prominent_face"],
        "default_target": "prominent_person",
        "params": ops["detect_bounding_box"]["params"],
    }
    assert ops["embed_clip_vit_b_32"]["description"] == "Generates an embedding using the CLIP ViT-B/32 model."
    assert ops["classify"]["description"] == (
        "Determines if an image region belongs to a specific collection using a binary classifier."
    )
    for name in SEED_TYPES[1:]:
        assert ops[name]["allowed_targets"] == ["whole_image", "prominent_person", "prominent_face"]
        assert ops[name]["default_target"] == "whole_image"
    assert "collection_id" in ops["classify"]["params"] and "max_length" in ops["describe_image"]["params"]


def test_defaults_are_filled_in():
    tasks = validate_tasks(
        [task("a", "detect_bounding_box"), task("b"), task("c", "describe_image"), task("d", "classify", collection_id=7)],
        32,
    )
    assert [(t.target, t.face_context) for t in tasks] == [("prominent_person", "prominent_person")] + [
        ("whole_image", "prominent_person")
    ] * 3
    assert tasks[2].params == {"max_length": 50}
    assert tasks[3].params == {"collection_id": "7"}


def test_null_params_mean_the_defaults():
    (t,) = validate_tasks([task("n", "describe_image", target=None, face_context=None, max_length=None)], 32)
    assert (t.target, t.face_context, t.params) == ("whole_image", "prominent_person", {"max_length": 50})


def test_explicit_params_are_kept():
    (t,) = validate_tasks([task("x", "describe_image", target="prominent_face", face_context="whole_image", max_length=9)], 32)
    assert (t.target, t.face_context, t.params) == ("prominent_face", "whole_image", {"max_length": 9})
    (c,) = validate_tasks([task("y", "classify", collection_id=" art ")], 32)
    assert c.params["collection_id"] == "art"


def test_unknown_type_lists_the_known_ones():
    err = refused([task("ok"), task("bad", "embed_everything")])
    assert err.code == "unknown_operation"
    assert "'bad'" in err.detail and "'embed_everything'" in err.detail and "describe_image" in err.detail


def test_target_not_allowed_for_the_type():
    err = refused([task("w", "detect_bounding_box", target="whole_image")])
    assert err.code == "invalid_target" and "prominent_person, prominent_face" in err.detail
    assert refused([task(target="left_ear")]).code == "invalid_target"


def test_missing_collection_id():
    err = refused([task("c", "classify")])
    assert err.code == "missing_param" and "collection_id" in err.detail


@pytest.mark.parametrize("value", [True, 1.5, "", "  ", [1], {"a": 1}, "x" * 101])
def test_invalid_collection_id(value):
    assert refused([task("c", "classify", collection_id=value)]).code == "invalid_task"


def test_duplicate_operation_id():
    err = refused([task("same"), task("other"), task("same", "describe_image")])
    assert err.code == "duplicate_operation_id" and "'same'" in err.detail


def test_too_many_and_too_few_tasks():
    err = refused([task(str(i)) for i in range(5)], max_tasks=4)
    assert err.code == "too_many_tasks" and "4" in err.detail and "IMAGE_EMBED_MAX_TASKS" in err.detail
    assert refused([]).code == "missing_tasks"
    assert len(validate_tasks([task(str(i)) for i in range(4)], 4)) == 4


@pytest.mark.parametrize("value", [0, 1, 129, "20", 20.0, True])
def test_invalid_max_length(value):
    err = refused([task("d", "describe_image", max_length=value)])
    assert err.code == "invalid_task" and "max_length" in err.detail


def test_unknown_parameter_and_bad_face_context():
    err = refused([task("e", max_lenght=5)])
    assert err.code == "invalid_task" and "'max_lenght'" in err.detail
    assert refused([task("e", face_context="prominent_face")]).code == "invalid_task"
    assert refused([task("e", "describe_image", collection_id=3)]).code == "invalid_task"


def test_blank_or_huge_operation_ids():
    assert refused([task(" ")]).code == "invalid_task"
    assert refused([task("x" * 201)]).code == "invalid_task"


def test_available_operations_follow_the_served_models():
    ops = available_operations(["clip"]).model_dump()["operations"]
    assert sorted(ops) == ["classify", "embed_clip", "embed_clip_vit_b_32"]
    assert ops["embed_clip_vit_b_32"]["allowed_targets"] == ["whole_image"]
    assert "model" in ops["embed_clip"]["params"]
    ops = available_operations(["clip", "face"]).model_dump()["operations"]
    assert ops["detect_bounding_box"]["allowed_targets"] == ["prominent_face"]
    assert ops["detect_bounding_box"]["default_target"] == "prominent_face"
    assert ops["embed_clip_vit_b_32"]["allowed_targets"] == ["whole_image", "prominent_face"]
    assert "describe_image" not in ops and "embed_dino_v2" not in ops
    everything = available_operations(["clip", "dinov2", "dinov3", "person", "face", "caption"]).model_dump()
    assert everything == available_operations().model_dump()


def test_a_task_without_target_defaults_to_a_served_one():
    task = AnalysisTask(operation_id="a", type="detect_bounding_box")
    assert validate_tasks([task], 4)[0].target == "prominent_person"
    assert validate_tasks([task], 4, served=["person", "face"])[0].target == "prominent_person"
    assert validate_tasks([task], 4, served=["face"])[0].target == "prominent_face"
    assert validate_tasks([AnalysisTask(operation_id="b", type="embed_clip_vit_b_32")], 4, served=["clip"])[0].target == "whole_image"
