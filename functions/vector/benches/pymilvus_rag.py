"""The pymilvus side of benches/rag.rs: the same collection shape, rows and searches as fn-vector.

Usage: python3 pymilvus_rag.py MILVUS_URL DATA_JSON  (prints one JSON line of timings)
DATA_JSON: {"collection", "tenant", "dim", "rows": [{id, doc_id, chunk_index, text, metadata, vector}],
            "queries": [[float]], "top_k"}
"""
import json
import sys
import time

from pymilvus import DataType, MilvusClient


def main():
    url, data_path = sys.argv[1], sys.argv[2]
    with open(data_path) as f:
        data = json.load(f)
    name, tenant, dim, top_k = data["collection"], data["tenant"], data["dim"], data["top_k"]
    client = MilvusClient(uri=url)
    if client.has_collection(name):
        client.drop_collection(name)
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("tenant", DataType.VARCHAR, max_length=256)
    schema.add_field("doc_id", DataType.VARCHAR, max_length=512)
    schema.add_field("chunk_index", DataType.INT64)
    schema.add_field("text", DataType.VARCHAR, max_length=65535)
    schema.add_field("metadata", DataType.JSON)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    index = client.prepare_index_params()
    index.add_index("vector", index_type="HNSW", metric_type="COSINE", params={"M": 16, "efConstruction": 200})
    client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")
    client.load_collection(name)

    rows = [dict(r, tenant=tenant) for r in data["rows"]]
    start = time.perf_counter()
    for i in range(0, len(rows), 512):
        client.upsert(name, rows[i : i + 512])
    ingest = time.perf_counter() - start

    latencies = []
    expr = 'tenant == "%s"' % tenant
    start = time.perf_counter()
    for q in data["queries"]:
        t = time.perf_counter()
        client.search(
            name,
            data=[q],
            limit=top_k,
            filter=expr,
            output_fields=["doc_id", "chunk_index", "text", "metadata"],
            search_params={"metric_type": "COSINE", "params": {"ef": max(64, top_k)}},
            consistency_level="Strong",
        )
        latencies.append(time.perf_counter() - t)
    total = time.perf_counter() - start
    print(json.dumps({"ingest_seconds": ingest, "rows": len(rows), "search_seconds": total, "latencies": latencies}))


if __name__ == "__main__":
    main()
