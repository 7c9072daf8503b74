"""NIR models (``hwgen inspect``/``compile`` of a .nir file): numbers no hardware can hold
and options click accepts but the import cannot use."""

import h5py
import nir
import numpy as np
import pytest


def lif(n, threshold=1.0):
    return nir.LIF(tau=np.full(n, 2e-4), r=np.full(n, 2.0), v_leak=np.zeros(n),
                   v_threshold=np.full(n, threshold), v_reset=np.zeros(n))


def write(path, weight=None, threshold=1.0, bias=None):
    weight = np.ones((3, 4)) if weight is None else weight
    linear = nir.Linear(weight) if bias is None else nir.Affine(weight, bias)
    nodes = {"in": nir.Input(np.array([4])), "fc": linear, "lif": lif(3, threshold),
             "out": nir.Output(np.array([3]))}
    names = list(nodes)
    nir.write(path, nir.NIRGraph(nodes=nodes, edges=list(zip(names, names[1:])),
                                 type_check=False))
    return path


@pytest.mark.parametrize("make, names", [
    (lambda p: write(p, threshold=np.inf), ["node 'lif' (LIF): parameter 'v_threshold' is "
                                            "infinite"]),
    (lambda p: write(p, threshold=np.nan), ["node 'lif' (LIF): parameter 'v_threshold' holds "
                                            "NaN"]),
    (lambda p: write(p, threshold=1e300), ["node 'lif' (LIF): parameter 'v_threshold' holds "
                                           "1e+300, beyond the +-2**47"]),
    (lambda p: write(p, weight=np.full((3, 4), 1e300)), ["node 'fc' (Linear): parameter "
                                                         "'weight' holds 1e+300"]),
    (lambda p: write(p, weight=np.full((3, 4), np.inf)), ["node 'fc' (Linear): parameter "
                                                          "'weight' is infinite"]),
    (lambda p: write(p, weight=np.full((3, 4), np.nan)), ["node 'fc'", "weight"]),
    (lambda p: write(p, bias=np.full(3, -np.inf)), ["node 'fc' (Affine): parameter 'bias' is "
                                                    "infinite"]),
    (lambda p: write(p, bias=np.full(3, float(np.iinfo(np.int64).min))),
     ["node 'fc' (Affine): parameter 'bias' holds 9.22337e+18"]),
    (lambda p: write(p, weight=np.ones((0, 4))), ["node 'lif'", "0 neurons"]),
])
def test_parameters_no_hardware_holds(hostile, scratch, make, names):
    make(scratch / "m.nir")
    hostile("inspect", "m.nir", "--timesteps", "4", names=["m.nir: ", *names])


@pytest.mark.parametrize("value", ["inf", "nan", "0", "-1e-3"])
def test_dt_must_be_finite_and_positive(hostile, scratch, value):
    write(scratch / "m.nir")
    hostile("inspect", "m.nir", "--timesteps", "4", "--dt", value, names="--dt", code=2)


def test_a_node_without_its_parameters(hostile, scratch):
    write(scratch / "m.nir")
    with h5py.File(scratch / "m.nir", "r+") as f:
        del f["node/nodes/fc/weight"]
    hostile("inspect", "m.nir", "--timesteps", "4", names=["m.nir: ", "node 'fc'"])


def test_a_parameter_of_the_wrong_kind(hostile, scratch):
    write(scratch / "m.nir")
    with h5py.File(scratch / "m.nir", "r+") as f:
        del f["node/nodes/lif/v_threshold"]
        f["node/nodes/lif"].create_dataset("v_threshold", data="high",
                                           dtype=h5py.string_dtype())
    hostile("inspect", "m.nir", "--timesteps", "4", names=["m.nir: ", "node 'lif'"])


def test_nodes_that_are_not_a_group(hostile, scratch):
    with h5py.File(scratch / "m.nir", "w") as f:
        f.create_group("node").create_dataset("type", data="NIRGraph",
                                              dtype=h5py.string_dtype())
        f["node"].create_dataset("nodes", data=3)
    hostile("inspect", "m.nir", "--timesteps", "4", names="m.nir: graph (top) has no 'nodes'")


def test_a_calibration_file_of_the_wrong_shape_is_named(hostile, scratch):
    write(scratch / "m.nir")
    np.savez(scratch / "cal.npz", inputs=np.zeros((2, 4, 5), np.uint8))
    hostile("inspect", "m.nir", "--timesteps", "4", "--calibration", "cal.npz",
            names="cal.npz: ")


def test_subgraphs_nested_too_deeply(hostile, scratch):
    with h5py.File(scratch / "m.nir", "w") as f:
        group = f.create_group("node")
        for _ in range(1200):
            group.create_dataset("type", data="NIRGraph", dtype=h5py.string_dtype())
            group = group.create_group("nodes").create_group("g")
    hostile("inspect", "m.nir", "--timesteps", "4", names="m.nir: groups nested too deeply")


def test_a_dataset_declaring_more_than_the_limit(hostile, scratch):
    write(scratch / "m.nir")
    with h5py.File(scratch / "m.nir", "r+") as f:
        del f["node/nodes/fc/weight"]
        f["node/nodes/fc"].create_dataset("weight", shape=(1 << 16, 1 << 15), dtype="f8",
                                          chunks=(1024, 1024), compression="gzip")
    hostile("inspect", "m.nir", "--timesteps", "4",
            names=["m.nir: dataset /node/nodes/fc/weight", "1073741824 bytes"])
