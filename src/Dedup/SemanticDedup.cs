using System.Globalization;
using System.IO.Hashing;
using System.Text;
using Microsoft.ML;
using Microsoft.ML.Data;
using Pipeline.Contracts;

namespace Pipeline.Dedup;

/// <summary>
/// A document's embedding without a model: its word unigrams and character 3-grams (lower-cased, sub-linear counts),
/// hashed with a sign into <see cref="Dimensions"/> buckets (feature hashing, Weinberger et al.
/// 2009: a sparse random projection of the n-gram vector), L2-normalized. Character n-grams make Japanese and
/// inflected words match; the sign keeps colliding features from adding up. Written by hand: no library hashes
/// n-grams into a fixed vector without a vocabulary pass.
/// </summary>
public static class TextEmbedding
{
    /// <summary>The embedding's size: enough buckets that colliding n-grams seldom matter.</summary>
    public const int Dimensions = 1024;

    /// <summary>The hash's seed: fixed, so embeddings made on any service, at any time, compare.</summary>
    private const long Seed = 1;

    public static float[] Embed(string text)
    {
        const int dimensions = Dimensions;
        const long seed = Seed;
        var counts = new Dictionary<ulong, int>();
        void Add(ReadOnlySpan<char> feature)
        {
            var hash = XxHash64.HashToUInt64(System.Runtime.InteropServices.MemoryMarshal.AsBytes(feature), seed);
            counts[hash] = counts.GetValueOrDefault(hash) + 1;
        }
        var lower = text.ToLower(CultureInfo.InvariantCulture);
        var normalized = new StringBuilder(lower.Length);
        foreach (var c in lower) normalized.Append(char.IsWhiteSpace(c) ? ' ' : c);
        var chars = normalized.ToString();
        foreach (var word in chars.Split(' ', StringSplitOptions.RemoveEmptyEntries)) Add(("w:" + word).AsSpan());
        for (var i = 0; i + 3 <= chars.Length; i++)
            if (chars[i + 1] != ' ') Add(chars.AsSpan(i, 3));
        var vector = new float[dimensions];
        foreach (var (hash, count) in counts)
        {
            var weight = 1 + MathF.Log(count);
            vector[(int)(hash % (ulong)dimensions)] += (hash >> 63) == 0 ? weight : -weight;
        }
        return Normalize(vector);
    }

    public static float[] Normalize(float[] vector)
    {
        var norm = MathF.Sqrt(vector.Sum(v => v * v));
        if (norm > 0) for (var i = 0; i < vector.Length; i++) vector[i] /= norm;
        return vector;
    }

    public static float Cosine(float[] a, float[] b)
    {
        var dot = 0f;
        for (var i = 0; i < a.Length; i++) dot += a[i] * b[i];
        return dot;
    }
}

/// <summary>What semantic dedup removed from one cluster: its size, and each removed document with the kept one it duplicates (null: pruned as prototypical).</summary>
public sealed record SemanticCluster(int Cluster, int Documents, IReadOnlyList<SemanticRemoval> Removed);

/// <param name="KeptId">The kept document the removed one is too close to; null when it was pruned as one of the cluster's most prototypical.</param>
public sealed record SemanticRemoval(string Id, string? KeptId, double Similarity);

/// <summary>
/// SemDeDup (Abbas et al. 2023) and D4's prototype pruning (Tirumala et al. 2023) over document embeddings: the
/// embeddings are centred on the corpus mean (the direction every document of one site shares says nothing about
/// duplication) and re-normalized; k-means (ML.NET's) groups them; within each cluster, documents are visited from the
/// closest to the centroid outwards and one whose cosine similarity to a kept document exceeds 1 − ε is removed, so of
/// near-duplicates the most central is kept. Optionally the <see cref="SemanticDedupSettings.PrototypeFraction"/> of
/// each cluster's kept documents nearest its centroid is then pruned as prototypical.
/// </summary>
public static class SemanticDeduplicator
{
    private sealed class Row
    {
        [VectorType]
        public float[] Features { get; set; } = [];
    }

    private sealed class Assignment
    {
        public uint PredictedLabel { get; set; }
    }

    public static IReadOnlyList<SemanticCluster> Run(IReadOnlyList<(string Id, float[] Vector)> documents, SemanticDedupSettings settings)
    {
        if (documents.Count == 0) return [];
        var dimensions = documents[0].Vector.Length;
        var mean = new float[dimensions];
        foreach (var (_, v) in documents)
            for (var i = 0; i < dimensions; i++) mean[i] += v[i] / documents.Count;
        var centred = documents.Select(d => TextEmbedding.Normalize(d.Vector.Select((x, i) => x - mean[i]).ToArray())).ToList();

        var k = Math.Clamp(settings.Clusters > 0 ? settings.Clusters : (int)Math.Ceiling(documents.Count / 200.0), 1, documents.Count);
        var labels = new int[documents.Count];
        float[][] centroids;
        if (k == 1) centroids = [TextEmbedding.Normalize(Enumerable.Range(0, dimensions).Select(i => centred.Sum(v => v[i])).ToArray())];
        else
        {
            var ml = new MLContext((int)settings.Seed);
            var data = ml.Data.LoadFromEnumerable(centred.Select(v => new Row { Features = v }),
                SchemaDefinition.Create(typeof(Row)).Also(s => s[nameof(Row.Features)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, dimensions)));
            var model = ml.Clustering.Trainers.KMeans(new Microsoft.ML.Trainers.KMeansTrainer.Options
            {
                NumberOfClusters = k, InitializationAlgorithm = Microsoft.ML.Trainers.KMeansTrainer.InitializationAlgorithm.KMeansPlusPlus, NumberOfThreads = 1,
            }).Fit(data);
            var assigned = ml.Data.CreateEnumerable<Assignment>(model.Transform(data), reuseRowObject: false).ToList();
            for (var i = 0; i < labels.Length; i++) labels[i] = (int)assigned[i].PredictedLabel - 1;
            VBuffer<float>[] buffers = [];
            model.Model.GetClusterCentroids(ref buffers, out _);
            centroids = buffers.Select(b => TextEmbedding.Normalize(b.DenseValues().ToArray())).ToArray();
        }

        var threshold = 1 - settings.Epsilon;
        var result = new List<SemanticCluster>();
        for (var c = 0; c < centroids.Length; c++)
        {
            var members = Enumerable.Range(0, documents.Count).Where(i => labels[i] == c)
                .OrderByDescending(i => TextEmbedding.Cosine(centred[i], centroids[c])).ThenBy(i => documents[i].Id, StringComparer.Ordinal).ToList();
            if (members.Count == 0) continue;
            var kept = new List<int>();
            var removed = new List<SemanticRemoval>();
            foreach (var i in members)
            {
                var (best, similarity) = (-1, float.MinValue);
                foreach (var j in kept)
                    if (TextEmbedding.Cosine(centred[i], centred[j]) is var s && s > similarity) (best, similarity) = (j, s);
                if (best >= 0 && similarity > threshold) removed.Add(new SemanticRemoval(documents[i].Id, documents[best].Id, similarity));
                else kept.Add(i);
            }
            // D4: the kept documents nearest the centroid (kept is in that order) are the most prototypical.
            var prune = (int)Math.Floor(kept.Count * settings.PrototypeFraction);
            removed.AddRange(kept.Take(prune).Select(i => new SemanticRemoval(documents[i].Id, null, TextEmbedding.Cosine(centred[i], centroids[c]))));
            result.Add(new SemanticCluster(c, members.Count, removed));
        }
        return result;
    }

    private static T Also<T>(this T value, Action<T> action)
    {
        action(value);
        return value;
    }
}
