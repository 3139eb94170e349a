using Pipeline.Bpe;
using System.IO.Hashing;
using System.Text;
using System.Text.Json;
using Pipeline.Contracts.V1;
using Pipeline.Runtime;
using Pipeline.Storage;
using Pipeline.Contracts.Rows;

namespace Pipeline.Tokenizer;

/// <summary>Trains a run's vocabulary from its dedup shards and turns dedup shards into token shards plus a manifest.</summary>
public sealed class CorpusTokenizer(TokenizerOptions options, ShardStore store, Ledger ledger)
{
    public const string Stage = Contracts.StageNames.Tokenize;
    private static readonly SemaphoreSlim ManifestGate = new(1);
    private readonly HashSet<string> _publishedManifests = [];


    /// <summary>
    /// The ids of the run's documents that are not to be trained on: duplicates kept before a copy with a smaller id
    /// arrived (<see cref="SupersededStore"/>), those decontamination removed and those semantic dedup removed.
    /// </summary>
    public async Task<IReadOnlySet<string>> ExcludedIdsAsync(string runId, CancellationToken ct = default)
    {
        var excluded = ledger.Superseded.Ids(runId);
        foreach (var key in new[] { LedgerKeys.ExcludedDocuments(runId), LedgerKeys.SemanticDuplicates(runId) })
            excluded.UnionWith(await ExcludedDocuments.ReadAsync(store, ledger.Documents, key, ct));
        return excluded;
    }

    /// <summary>A digest of an excluded set, for the configuration hash of what was tokenized without it.</summary>
    private static string? Digest(IReadOnlySet<string> excluded) => excluded.Count == 0 ? null
        : Convert.ToHexStringLower(XxHash64.Hash(Encoding.UTF8.GetBytes(string.Join('\n', excluded.Order(StringComparer.Ordinal)))));

    /// <summary>Trains and saves the vocabulary; returns (folder URI, hash).</summary>
    public async Task<(string Uri, string Hash, int VocabSize)> TrainAsync(string runId, IReadOnlyList<ShardRef> shards, int vocabSize, CancellationToken ct,
        Func<ShardRef, ShardStore>? sourceOf = null, IProgress<(int Merges, int Target)>? progress = null)
    {
        // The training sample is the documents in id order, up to MaxTrainingChars: the same documents give the same
        // vocabulary however the crawl spread them over shards (a concurrent crawl fills shards in a different order
        // each time). Only ids and lengths are kept while reading; the texts are read again in that order.
        var excluded = await ExcludedIdsAsync(runId, ct);
        var order = new List<(string Id, int Length, ShardRef Shard)>();
        foreach (var shard in shards)
            await foreach (var group in (sourceOf?.Invoke(shard) ?? store).ReadRowGroupsAsync<CleanDocument>(shard, ct))
                order.AddRange(group.Where(d => !excluded.Contains(d.Id)).Select(d => (d.Id, d.Text.Length, shard)));
        var chosen = new HashSet<string>();
        long chars = 0;
        foreach (var (id, length, _) in order.OrderBy(d => d.Id, StringComparer.Ordinal))
        {
            if (chars >= options.MaxTrainingChars) break;
            chosen.Add(id);
            chars += length;
        }
        var byId = new Dictionary<string, string>();
        foreach (var shard in order.Where(d => chosen.Contains(d.Id)).Select(d => d.Shard).Distinct())
            await foreach (var group in (sourceOf?.Invoke(shard) ?? store).ReadRowGroupsAsync<CleanDocument>(shard, ct))
                foreach (var doc in group.Where(d => chosen.Contains(d.Id))) byId[doc.Id] = doc.Text;
        var texts = byId.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => kv.Value).ToList();
        var model = new BpeTrainer(vocabSize, options.MinFrequency).Train(texts, progress);
        var uri = $"tokenizers/{runId}";
        var hash = await store.CommitFolderAsync(uri, model.Save, ct);
        RunArtifacts.RecordTokenizer(ledger, runId, uri, hash);
        return (uri, hash, model.VocabSize);
    }

    public (string Uri, string Hash)? TokenizerOf(string runId) => RunArtifacts.TokenizerOf(ledger, runId);

    /// <summary>Tokenizes a shard one row group at a time (memory bounded by a row group, not the shard).</summary>
    public async Task<StageResult> ProcessAsync(ShardRef input, TextTokenizer tokenizer, CancellationToken ct, ShardStore? source = null)
    {
        var wide = tokenizer.VocabSize >= 65_536;
        var excluded = await ExcludedIdsAsync(input.RunId, ct);
        var configHash = StableId.ConfigHash(new { options.ValidationPerMille, tokenizer.Hash, excluded = Digest(excluded) });
        var shardId = StableId.Of(input.ShardId, Stage, configHash);
        long train = 0, validation = 0;
        var skipped = 0;
        await using var writer = store.CreateParquetWriter<TokenRow>($"shards/tokens/{input.RunId}/tokens-{shardId}.parquet",
            new ShardDescriptor(shardId, Stage, configHash, [input.ShardId], input.RunId));
        await foreach (var group in (source ?? store).ReadRowGroupsAsync<CleanDocument>(input, ct))
        {
            var documents = excluded.Count == 0 ? group : group.Where(d => !excluded.Contains(d.Id)).ToList();
            skipped += group.Count - documents.Count;
            var rows = new TokenRow[documents.Count];
            Parallel.For(0, documents.Count, new ParallelOptions { CancellationToken = ct }, i =>
            {
                var doc = documents[i];
                var ids = tokenizer.Encode(doc.Text).Append(tokenizer.EndOfText).ToArray();
                rows[i] = new TokenRow { DocId = doc.Id, Split = SplitOf(doc.Id), Count = ids.Length, Tokens = TokenRow.Pack(ids, wide) };
            });
            train += rows.Where(r => r.Split == "train").Sum(r => (long)r.Count);
            validation += rows.Where(r => r.Split == "validation").Sum(r => (long)r.Count);
            await writer.AppendAsync(rows, ct);
        }
        var shard = await writer.CompleteAsync(ct);
        return new StageResult([shard], new TokenShardStats(train, validation, tokenizer.Hash, skipped));
    }

    /// <summary>Rewrites the run's manifest from the ledger (after the ledger has recorded the new shard).</summary>
    public async Task WriteManifestAsync(string runId, TextTokenizer tokenizer, string tokenizerUri, CancellationToken ct = default)
    {
        await ManifestGate.WaitAsync(ct);
        try
        {
            var entries = new List<TokenShardEntry>();
            // Ordered by shard id, so the trainer's token stream does not depend on the order shards finished in.
            foreach (var shard in ledger.Artifacts.Shards(runId, Stage).OrderBy(s => s.ShardId, StringComparer.Ordinal))
            {
                var extra = ledger.Artifacts.ShardExtra(shard.ShardId);
                var counts = extra is null ? null : JsonSerializer.Deserialize<TokenShardStats>(extra);
                if (counts is null || counts.TokenizerHash != tokenizer.Hash) continue;
                entries.Add(new TokenShardEntry(shard.ShardId, shard.Uri, shard.Sha256, counts.TrainTokens, counts.ValidationTokens));
            }
            var manifest = new TokenManifest(tokenizer.Hash, tokenizerUri, tokenizer.VocabSize, tokenizer.VocabSize >= 65_536 ? "int32" : "uint16", entries);
            var uri = RunArtifacts.TokenManifestUri(runId);
            var json = manifest.ToJson();
            var path = store.Resolve(uri);
            // An unchanged manifest is not written or uploaded again: readers on other hosts never see it replaced for
            // nothing. (Once per process whatever: a crash may have left the local file written and the upload not done.)
            if (!File.Exists(path) || File.ReadAllText(path) != json || !_publishedManifests.Contains(runId))
                await manifest.CommitAsync(store, uri, ct);
            _publishedManifests.Add(runId);
        }
        finally
        {
            ManifestGate.Release();
        }
    }

    public string SplitOf(string docId) =>
        XxHash64.HashToUInt64(Encoding.UTF8.GetBytes(docId)) % 1000 < (ulong)options.ValidationPerMille ? "validation" : "train";
}

/// <param name="Excluded">Documents of the input shard not tokenized: superseded duplicates, and decontamination's removals.</param>
public sealed record TokenShardStats(long TrainTokens, long ValidationTokens, string TokenizerHash, int Excluded = 0);
