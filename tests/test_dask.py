"""The Dask recipe of docs/dask.md: softmax along a non-chunked axis and attention over
(batch, heads) blocks, on a LocalCluster of two worker processes, give exactly the result of
one in-process call."""

from __future__ import annotations

import numpy as np
import pytest
import softcore

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("dask.distributed")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    c = distributed.Client(cluster)
    c.run(softcore.set_num_threads, 1)
    yield c
    c.close()
    cluster.close()


def causal_attention(q, k, v):
    return softcore.softmax_attention(q, k, v, causal=True)


def test_softmax_and_attention_over_blocks_match_one_call(client):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((12, 64, 300)).astype(np.float32)
    dx = da.from_array(x, chunks=(3, 64, 300))  # the softmax axis whole in each block
    np.testing.assert_array_equal(
        dx.map_blocks(softcore.softmax, dtype=np.float32).compute(), softcore.softmax(x)
    )
    np.testing.assert_array_equal(
        dx.map_blocks(softcore.logsumexp, drop_axis=2, dtype=np.float32).compute(),
        softcore.logsumexp(x),
    )
    q, k, v = (rng.standard_normal((2, 4, 128, 16)).astype(np.float32) for _ in range(3))
    blocks = [da.from_array(a, chunks=(1, 2, 128, 16)) for a in (q, k, v)]
    out = da.map_blocks(causal_attention, *blocks, dtype=np.float32).compute()
    np.testing.assert_array_equal(out, causal_attention(q, k, v))
    # The work ran in the worker processes, not here.
    assert len(client.scheduler_info()["workers"]) == 2
