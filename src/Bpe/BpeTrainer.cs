using System.Collections.Concurrent;
using System.Text;

namespace Pipeline.Bpe;

/// <summary>
/// Byte-level BPE training. Pre-tokens are counted once (in parallel); the merge loop keeps pair counts, a pair to
/// words index and a max-heap with lazy invalidation, so each merge touches only the words that contain the pair.
/// Hand-written: Microsoft.ML.Tokenizers encodes but cannot learn a vocabulary.
/// </summary>
public sealed class BpeTrainer(int vocabSize, int minFrequency = 2)
{
    public int VocabSize { get; } = vocabSize;

    public static int MinimumVocabSize => 256 + SpecialTokens.All.Count;

    public BpeModel Train(IEnumerable<string> documents, IProgress<(int Merges, int Target)>? progress = null)
    {
        if (VocabSize < MinimumVocabSize)
            throw new ArgumentException($"vocab size {VocabSize} is smaller than 256 byte tokens + {SpecialTokens.All.Count} special tokens = {MinimumVocabSize}");
        var counts = CountPreTokens(documents);
        if (counts.Count == 0) throw new InvalidOperationException("cannot train a tokenizer on an empty corpus: no text in the input");

        // Words as symbol sequences with frequencies.
        var words = new List<int[]>(counts.Count);
        var freqs = new List<long>(counts.Count);
        foreach (var (word, count) in counts.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            words.Add(Encoding.UTF8.GetBytes(word).Select(b => (int)b).ToArray());
            freqs.Add(count);
        }

        var tokens = new List<byte[]>(VocabSize);
        var byBytes = new Dictionary<string, int>();
        for (var b = 0; b < 256; b++)
        {
            tokens.Add([(byte)b]);
            byBytes[Convert.ToBase64String(tokens[b])] = b;
        }

        var pairCounts = new Dictionary<long, long>();
        var pairWords = new Dictionary<long, HashSet<int>>();
        for (var w = 0; w < words.Count; w++) AddPairs(words[w], freqs[w], w, pairCounts, pairWords);
        var heap = new PriorityQueue<long, (long, long)>(pairCounts.Count);
        foreach (var (pair, count) in pairCounts) heap.Enqueue(pair, Priority(pair, count));

        var merges = new List<(int A, int B)>();
        var target = VocabSize - SpecialTokens.All.Count;
        while (tokens.Count < target && heap.TryDequeue(out var best, out var priority))
        {
            var current = pairCounts.GetValueOrDefault(best);
            if (current != -priority.Item1) continue; // stale entry
            if (current < minFrequency) break;
            var (a, b) = ((int)(best >> 32), (int)(best & 0xffffffff));
            var merged = tokens[a].Concat(tokens[b]).ToArray();
            var key = Convert.ToBase64String(merged);
            if (!byBytes.TryGetValue(key, out var id))
            {
                id = tokens.Count;
                tokens.Add(merged);
                byBytes[key] = id;
            }
            merges.Add((a, b));
            // Net change of every pair's count across the rewritten words: only pairs next to a merge change, so only
            // those are updated and re-queued (long words would otherwise re-queue all their pairs every merge).
            var delta = new Dictionary<long, long>();
            // The index keeps words that once held the pair; skip those a previous merge already rewrote.
            foreach (var w in pairWords[best])
            {
                var word = words[w];
                if (!ContainsPair(word, a, b)) continue;
                var replaced = Replace(word, a, b, id);
                CountPairs(word, -freqs[w], delta);
                CountPairs(replaced, freqs[w], delta);
                words[w] = replaced;
                for (var i = 0; i + 1 < replaced.Length; i++)
                {
                    if (replaced[i] != id && replaced[i + 1] != id) continue;
                    var pair = ((long)replaced[i] << 32) | (uint)replaced[i + 1];
                    if (!pairWords.TryGetValue(pair, out var set)) pairWords[pair] = set = [];
                    set.Add(w);
                }
            }
            pairCounts.Remove(best);
            pairWords.Remove(best);
            foreach (var (pair, change) in delta)
            {
                if (change == 0 || pair == best) continue;
                var c = pairCounts.GetValueOrDefault(pair) + change;
                if (c <= 0)
                {
                    pairCounts.Remove(pair);
                    continue;
                }
                pairCounts[pair] = c;
                heap.Enqueue(pair, Priority(pair, c));
            }
            if (merges.Count % 500 == 0) progress?.Report((tokens.Count, target));
        }
        return new BpeModel(tokens, merges, SpecialTokens.All);
    }

    /// <summary>Counts pre-tokens across documents in parallel.</summary>
    public static Dictionary<string, long> CountPreTokens(IEnumerable<string> documents)
    {
        var global = new ConcurrentDictionary<string, long>(StringComparer.Ordinal);
        Parallel.ForEach(documents, () => new Dictionary<string, long>(StringComparer.Ordinal), (doc, _, local) =>
        {
            foreach (var match in PreTokenizerPattern.Regex.EnumerateMatches(doc))
            {
                var piece = doc.Substring(match.Index, match.Length);
                local[piece] = local.GetValueOrDefault(piece) + 1;
            }
            return local;
        }, local =>
        {
            foreach (var (k, v) in local) global.AddOrUpdate(k, v, (_, old) => old + v);
        });
        return new Dictionary<string, long>(global, StringComparer.Ordinal);
    }

    // Highest count first; ties broken by the smaller pair, so training is deterministic.
    private static (long, long) Priority(long pair, long count) => (-count, pair);

    private static void AddPairs(int[] word, long freq, int w, Dictionary<long, long> counts, Dictionary<long, HashSet<int>> index)
    {
        for (var i = 0; i + 1 < word.Length; i++)
        {
            var pair = ((long)word[i] << 32) | (uint)word[i + 1];
            counts[pair] = counts.GetValueOrDefault(pair) + freq;
            if (!index.TryGetValue(pair, out var set)) index[pair] = set = [];
            set.Add(w);
        }
    }

    private static void CountPairs(int[] word, long freq, Dictionary<long, long> delta)
    {
        for (var i = 0; i + 1 < word.Length; i++)
        {
            var pair = ((long)word[i] << 32) | (uint)word[i + 1];
            delta[pair] = delta.GetValueOrDefault(pair) + freq;
        }
    }

    private static bool ContainsPair(int[] word, int a, int b)
    {
        for (var i = 0; i + 1 < word.Length; i++)
            if (word[i] == a && word[i + 1] == b) return true;
        return false;
    }

    private static int[] Replace(int[] word, int a, int b, int id)
    {
        var result = new List<int>(word.Length);
        for (var i = 0; i < word.Length; i++)
        {
            if (i + 1 < word.Length && word[i] == a && word[i + 1] == b)
            {
                result.Add(id);
                i++;
            }
            else
            {
                result.Add(word[i]);
            }
        }
        return result.ToArray();
    }
}
