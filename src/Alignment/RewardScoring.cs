using System.Text.Json;
using Pipeline.Bpe;
using Pipeline.Model;
using Pipeline.Storage;

namespace Pipeline.Alignment;

/// <summary>
/// `pipeline reward score`: a reward model's score of each record's response, or of its chosen and rejected ones, as
/// one JSON line per record ({"line", "reward"} or {"line", "chosen", "rejected", "margin"}). Each response is read as
/// the chat template puts it after its prompt; a sequence longer than the context loses its start (the reward is read
/// at the last token, which must stay).
/// </summary>
public static class RewardScoring
{
    public sealed record Summary(int Records, int Truncated, double? Accuracy);

    public static Summary Score(Gpt model, TextTokenizer tokenizer, IReadOnlyList<ScoringRecord> records, string outputPath, int batchSize = 16)
    {
        var template = new ChatTemplate(tokenizer);
        var context = model.Config.Context;
        var truncated = 0;
        List<int> Sequence(ScoringRecord record, string response)
        {
            List<int> ids = [.. template.Prompt(record.Prompt), .. template.Reply(response)];
            if (ids.Count <= context) return ids;
            truncated++;
            return ids[^context..];
        }
        var sequences = records.SelectMany(r => r.Responses.Select(response => Sequence(r, response))).ToList();
        var rewards = AlignmentTrainer.BatchedRewards(model, sequences, tokenizer.SpecialIds[SpecialTokens.Pad], batchSize);
        var at = 0;
        int pairs = 0, preferred = 0;
        AtomicWrite.Text(outputPath, string.Concat(records.Select(record =>
        {
            if (record.Responses.Count == 1) return JsonSerializer.Serialize(new { line = record.Line, reward = rewards[at++] }) + "\n";
            var (chosen, rejected) = (rewards[at++], rewards[at++]);
            pairs++;
            if (chosen > rejected) preferred++;
            return JsonSerializer.Serialize(new { line = record.Line, chosen, rejected, margin = chosen - rejected }) + "\n";
        })));
        return new Summary(records.Count, truncated, pairs == 0 ? null : (double)preferred / pairs);
    }
}
