"""bench/served_cpu.py: which server process is which, and the runner counters it reads."""

from __future__ import annotations


from bench import served_cpu

GATEWAY = "python -m _bentoml_impl.worker.service . --fd 8 --service-name image_embed --backlog 2048 --worker-id 1"
RUNNER = "python -m _bentoml_impl.worker.service . --service-name clip_runner --fd 3 --worker-id 1"
INDEX = "python -m _bentoml_impl.worker.service . --service-name index_runner --fd 7 --worker-id 1"


def test_roles_come_from_the_service_name():
    assert served_cpu.role(GATEWAY, "clip_runner") == "gateway"
    assert served_cpu.role(RUNNER, "clip_runner") == "runner"
    assert served_cpu.role(INDEX, "clip_runner") == "other"
    assert served_cpu.role("python .venv/bin/bentoml serve . --port 3000", "clip_runner") == "other"
    assert served_cpu.role(RUNNER, "dino_runner") == "other"


def test_parse_metrics_sums_the_method_over_label_sets():
    text = "\n".join([
        "# HELP image_embed_batch_items Items in one runner batch",
        'image_embed_batch_items_sum{method="encode_images",runner="clip"} 40.0',
        'image_embed_batch_items_sum{method="encode_images",runner="clip",worker="2"} 8.0',
        'image_embed_batch_items_sum{method="encode_texts",runner="clip"} 99.0',
        'image_embed_batch_items_count{method="encode_images",runner="clip"} 6.0',
        'image_embed_inference_seconds_sum{method="encode_images",runner="clip"} 1.5',
    ])
    assert served_cpu.parse_metrics(text) == {
        "image_embed_batch_items_sum": 48.0, "image_embed_batch_items_count": 6.0, "image_embed_inference_seconds_sum": 1.5,
    }
    assert served_cpu.parse_metrics("") == dict.fromkeys(served_cpu.METRICS, 0.0)
