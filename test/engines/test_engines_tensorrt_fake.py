"""The whole TensorRT backend (build, timing cache, context, shapes, addresses, execute) against
a recording fake of `tensorrt` and of CUDA streams (fake_tensorrt.py): no TensorRT, no GPU."""
import pytest
import torch

from conftest import MODEL  # test/engines/conftest.py: at the top, as pytest imports it then
from fake_tensorrt import Recorder, make_tensorrt, patch_cuda
from litesam_ros.engines import create_backend
from litesam_ros.engines import tensorrt_backend as trb
from litesam_ros.engines.base import ENCODER_OUTPUTS


@pytest.fixture
def fake(monkeypatch):
    """Install a TensorRT 10.13-shaped fake; returns a function that swaps in another one."""
    rec = Recorder()
    patch_cuda(monkeypatch, rec)

    def install(version="10.13.0.35", **kw):
        trt = make_tensorrt(version, rec, **kw)
        monkeypatch.setattr(trb, "trt", trt)
        return trt

    install()
    install.rec = rec
    return install


def _backend(graphs, config, cache, device="cpu", precision="fp16"):
    return trb.build_tensorrt_backend(graphs.encoder, graphs.decoder, config, cache, precision,
                                      device=torch.device(device))


def test_whole_backend_runs_on_the_fake(fake, graphs, model_and_id, tmp_path):
    """Build both engines, open them, encode and decode: its own stream (never the legacy
    default 0), ordered against the caller's both ways, aligned addresses, int64 groups."""
    cfg = model_and_id[0].config
    be = _backend(graphs, cfg, tmp_path)
    rec = fake.rec
    builds = [c for c in rec.calls if c[0] == "build"]
    assert len(builds) == 2 and builds[1][1] == ["FP16"]
    # the AutoPPN peak test is pinned to FP32 in the encoder, with the constraint flag
    assert set(builds[0][3]) == {"node_eq", "node_max_pool2d", "node_sigmoid_1"}
    assert builds[0][1] == ["FP16", "PREFER_PRECISION_CONSTRAINTS"]
    assert builds[1][2][0]["point_coords"][2][0] == be.profile.prompts.max
    image = torch.zeros(1, 3, cfg.image_size, cfg.image_size)
    res = be.encode(image)
    assert res.groups is not None and res.groups.dtype == torch.int64
    assert tuple(res.embeddings.shape) == (1, cfg.embed_dim, cfg.embedding_size,
                                            cfg.embedding_size)
    # a view that starts 4 bytes into its storage (as EncoderResult.select gives) is copied
    big = torch.zeros(1 + res.embeddings.numel())
    view = big[1:].view(res.embeddings.shape)
    assert view.data_ptr() % 256
    logits, ious = be.decode(view, torch.zeros(3, 2, 2), torch.ones(3, 2))
    assert logits.shape[0] == 3 and ious.shape[0] == 3
    runs = [c for c in rec.calls if c[0] == "execute"]
    assert len(runs) == 2
    for _, handle, addresses in runs:
        assert handle != 0, "enqueued on the legacy default stream"
        assert all(a % 256 == 0 for a in addresses.values()), addresses
    own = {h for _, h, _ in runs}
    assert any(a in own and b == 0 for a, b in rec.waits)  # waits for the caller's inputs
    assert any(a == 0 and b in own for a, b in rec.waits)  # the caller waits for the run
    d = be.describe()
    assert d["tensorrt"] == "10.13.0.35" and d["precision_decoder"] == "fp16"
    assert set(d) == {"backend", "device", "precision", "tensorrt", "precision_encoder",
                      "precision_decoder", "engine_build_s"} and float(d["engine_build_s"]) >= 0


def test_int8_reuses_the_fp16_decoder(fake, graphs, model_and_id, tmp_path):
    cfg = model_and_id[0].config
    _backend(graphs, cfg, tmp_path)
    fake.rec.calls.clear()
    trb.cached_engine(graphs.decoder, tmp_path, "decoder", "int8",
                      trb.DecoderProfile.for_config(cfg), device=torch.device("cpu"))
    assert "build" not in fake.rec.names()


def test_device_is_made_current_for_build_deserialise_and_stream(fake, graphs, tmp_path):
    dev = torch.device("cuda", 1)
    path = trb.build_engine(graphs.encoder, tmp_path / "e.engine",
                            trb.precision_plan("fp16", "encoder"), device=dev, progress=False)
    assert fake.rec.devices == [dev]
    runner = trb.TrtEngineRunner(path, dev)
    assert fake.rec.devices == [dev, dev] and runner.stream.device == dev
    assert runner.stream.cuda_stream != 0


def test_mismatched_timing_cache_still_builds_and_is_replaced(fake, graphs, tmp_path):
    cache = trb.timing_cache_file(tmp_path, "Orin (fake)", (8, 7))
    cache.write_bytes(b"cache:another-gpu")
    trb.build_engine(graphs.encoder, tmp_path / "e.engine",
                     trb.precision_plan("fp16", "encoder"), timing_cache_path=cache,
                     progress=False)
    sets = [c for c in fake.rec.calls if c[0] == "set_timing_cache"]
    assert [s[3] for s in sets] == [False, True]  # rejected, then an empty one
    assert cache.read_bytes() == b"cache:orin"
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))
    # the file name holds the TensorRT version and the GPU
    assert cache != trb.timing_cache_file(tmp_path, "RTX 4090", (8, 9))


def test_none_timing_cache_and_none_context_are_clear_errors(fake, graphs, tmp_path):
    fake(timing_cache_none=True)
    with pytest.raises(RuntimeError, match="could not create a timing cache"):
        trb.build_engine(graphs.encoder, tmp_path / "e.engine",
                         trb.precision_plan("fp16", "encoder"),
                         timing_cache_path=tmp_path / "t.cache", progress=False)
    assert not (tmp_path / "e.engine").exists()
    fake(context_none=True)
    path = trb.build_engine(graphs.encoder, tmp_path / "e.engine",
                            trb.precision_plan("fp16", "encoder"), progress=False)
    with pytest.raises(RuntimeError, match="could not create an execution context"):
        trb.TrtEngineRunner(path, torch.device("cpu"))


def test_tensorrt_11_is_refused_in_one_line(fake, graphs, model_and_id, tmp_path):
    fake("11.0.0")
    line = trb.tensorrt_missing()
    assert "TensorRT 11 removed BuilderFlag.FP16/INT8" in line and "\n" not in line
    assert not trb.tensorrt_available()
    with pytest.raises(RuntimeError, match="^TensorRT 11.0.0 is not supported"):
        _backend(graphs, model_and_id[0].config, tmp_path)
    with pytest.raises(RuntimeError, match="no BuilderFlag.FP16"):
        trb._set_builder_flag(object(), "FP16")  # type: ignore[arg-type]


def test_tensorrt_8_6_shapes_are_handled_and_refused_for_opset_18(fake, graphs, model_and_id,
                                                                  tmp_path):
    trt = fake("8.6.2")
    line = trb.tensorrt_missing()
    assert "opset <= 17" in line and "opset 18" in line and "\n" not in line
    with pytest.raises(RuntimeError, match="^TensorRT 8.6.2 is not supported"):
        _backend(graphs, model_and_id[0].config, tmp_path)
    # what 8.6 needs is in place for the day the graphs are opset 17: an explicit-batch
    # network (flag 0 is implicit batch there) and no DataType.INT64
    net = trb._create_network(trt.Builder(trt.Logger(trt.Logger.WARNING)))
    assert net.explicit_batch and net.flags == 1
    assert trb._torch_dtype(trt.DataType.INT32) == torch.int32
    assert not hasattr(trt.DataType, "INT64")


def test_int8_with_auto_reports_tensorrt_failure_not_the_cpu_refusal(fake, cache_dir,
                                                                      trt_int8_encoder):
    """A TensorRT build that fails under backend auto at int8 raises its own error: no other
    backend takes int8 on a GPU, so their refusal (factory.ORT_CUDA_INT8_REFUSAL) would hide it."""
    fake(parse_error="only activation types allowed as input to this layer")
    with pytest.raises(RuntimeError, match="only activation types allowed"):
        create_backend("auto", MODEL, precision="int8", cache_dir=cache_dir,
                       device="cuda:0")


def test_supported_range_and_version_lines():
    assert trb.tensorrt_version_problem("10.0.1") == ""
    assert trb.tensorrt_version_problem("10.13.0.35") == ""
    assert trb.tensorrt_version_problem("10.3.0", graph_opset=18) == ""
    assert trb.tensorrt_version_problem("8.6.2", graph_opset=17) == ""
    for bad in ("8.5.3", "7.1", "11.1", "x"):
        assert trb.tensorrt_version_problem(bad) and "\n" not in trb.tensorrt_version_problem(bad)


def test_decoder_profile_fits_the_memory_of_1024_models(model_and_id):
    """P max 256 reserves a 2 GiB [P, 65536, 32] fp32 tensor for a 1024-px model; the profile
    now caps P so that tensor stays within DECODER_TENSOR_BUDGET."""
    from litesam_ros.model.registry import get_config

    big = get_config("mobile_sam")
    p = trb.DecoderProfile.for_config(big).prompts
    assert p.max == 64 and p.opt <= p.max
    assert p.max * big.low_res_size ** 2 * big.embed_dim // 8 * 4 <= trb.DECODER_TENSOR_BUDGET
    small = trb.DecoderProfile.for_config(model_and_id[0].config).prompts
    assert small == trb.DEFAULT_PROMPTS  # r320 keeps its profile (and its cache key)


def test_encoder_outputs_are_the_contract():
    assert ENCODER_OUTPUTS[3] == "groups"
