"""The pymilvus side of benches/rag.rs: the same collection shape, rows and searches as fn-vector.

Usage: python3 pymilvus_rag.py MILVUS_URL DATA_JSON EMBEDDINGS_URL  (prints one JSON line of timings)
DATA_JSON: {"collection", "tenant", "dim", "rows": [{id, doc_id, chunk_index, text, metadata, vector}],
            "queries": [[float]], "query_texts": [str], "top_k", "per_call", "embed_batch"}

Besides upserting and searching the given vectors, it runs the whole pipeline the node runs:
texts embedded through the same OpenAI-compatible server (POST EMBEDDINGS_URL, batches of
`embed_batch`, `per_call` documents per upsert, then the node's delete of stale chunks: every
document here has one chunk), and query texts embedded before each search.
"""
import json
import sys
import time
import urllib.request


def embed(url, texts, dim):
    body = json.dumps({"model": "text-embedding-3-small", "input": texts, "dimensions": dim}).encode()
    req = urllib.request.Request(url, data=body, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req) as res:
        data = json.load(res)["data"]
    return [d["embedding"] for d in sorted(data, key=lambda d: d["index"])]

from pymilvus import DataType, MilvusClient


def main():
    url, data_path, embed_url = sys.argv[1], sys.argv[2], sys.argv[3]
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
    for n in (name, name + "_pipeline"):
        if client.has_collection(n):
            client.drop_collection(n)
        client.create_collection(n, schema=schema, index_params=index, consistency_level="Strong")
        client.load_collection(n)

    # The node's pipeline: embed each call's texts in batches, then upsert the call's rows.
    per_call, batch = data["per_call"], data["embed_batch"]
    start = time.perf_counter()
    pipeline_latencies = []
    for first in range(0, len(data["rows"]), per_call):
        t = time.perf_counter()
        call = data["rows"][first : first + per_call]
        vectors = []
        for b in range(0, len(call), batch):
            vectors.extend(embed(embed_url, [r["text"] for r in call[b : b + batch]], dim))
        client.upsert(name + "_pipeline", [dict(r, tenant=tenant, vector=v) for r, v in zip(call, vectors)])
        # As the node does: drop chunks past each document's new last one (a shorter re-ingest).
        ids = ", ".join(json.dumps(r["doc_id"]) for r in call)
        client.delete(name + "_pipeline", filter='(tenant == "%s") && (doc_id in [%s]) && (chunk_index >= 1)' % (tenant, ids))
        pipeline_latencies.append(time.perf_counter() - t)
    pipeline_ingest = time.perf_counter() - start

    rows = [dict(r, tenant=tenant) for r in data["rows"]]
    start = time.perf_counter()
    for i in range(0, len(rows), 512):
        client.upsert(name, rows[i : i + 512])
    ingest = time.perf_counter() - start

    expr = 'tenant == "%s"' % tenant

    def search(vector):
        client.search(
            name,
            data=[vector],
            limit=top_k,
            filter=expr,
            output_fields=["doc_id", "chunk_index", "text", "metadata"],
            search_params={"metric_type": "COSINE", "params": {"ef": max(64, top_k)}},
            consistency_level="Strong",
        )

    latencies = []
    start = time.perf_counter()
    for q in data["queries"]:
        t = time.perf_counter()
        search(q)
        latencies.append(time.perf_counter() - t)
    total = time.perf_counter() - start

    # Query texts: embedded, then searched, as vector_search with `query` does.
    query_latencies = []
    start = time.perf_counter()
    for q in data["query_texts"]:
        t = time.perf_counter()
        search(embed(embed_url, [q], dim)[0])
        query_latencies.append(time.perf_counter() - t)
    query_total = time.perf_counter() - start
    print(json.dumps({"ingest_seconds": ingest, "rows": len(rows), "search_seconds": total, "latencies": latencies,
                      "pipeline_seconds": pipeline_ingest, "pipeline_latencies": pipeline_latencies,
                      "query_seconds": query_total, "query_latencies": query_latencies}))


if __name__ == "__main__":
    main()
