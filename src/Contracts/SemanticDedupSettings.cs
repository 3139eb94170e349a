namespace Pipeline.Contracts;

/// <summary>
/// Semantic dedup of a run's kept documents (Pipeline:SemanticDedup; docs/dedup.md): SemDeDup removes a document whose
/// embedding's cosine similarity to a kept one in its k-means cluster exceeds 1 − <paramref name="Epsilon"/>; D4 then
/// prunes the <paramref name="PrototypeFraction"/> of each cluster nearest its centroid.
/// </summary>
/// <param name="Clusters">k of k-means; 0 = one cluster per 200 documents.</param>
/// <param name="Seed">k-means' seed.</param>
/// <param name="Checkpoint">The checkpoint whose mean last hidden states are the embeddings (null: hashed n-grams).</param>
public sealed record SemanticDedupSettings(double Epsilon = 0.35, int Clusters = 0, double PrototypeFraction = 0, long Seed = 1, string? Checkpoint = null);
