using System.Diagnostics;
using Pipeline.Crawler.Warc;

namespace Pipeline.Cli.Tests;

/// <summary>The stage commands chained by hand over folders, as a user scripts them: crawl --warc, clean, dedup, tokenizer, tokenize, train, sample, export.</summary>
public sealed class StageCommandTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("cli-").FullName;

    private static async Task<(int Exit, string Output)> Pipeline(params string[] args)
    {
        var (exit, stdout, stderr) = await BadInputTests.RunAsync(args);
        return (exit, stdout + stderr);
    }

    private static async Task<string> Ok(params string[] args)
    {
        var (exit, output) = await Pipeline(args);
        Assert.True(exit == 0, $"pipeline {string.Join(' ', args)} exited with {exit}:\n{output}");
        return output;
    }

    [Fact(Timeout = 300_000)]
    public async Task Stage_commands_chain_over_folders()
    {
        // A WARC of the sample site's pages (English and Japanese).
        var warc = Path.Combine(_root, "site.warc.gz");
        var pages = SampleWarc.Write(warc);
        var outDir = Path.Combine(_root, "out");
        var repository = Path.GetFullPath(Path.Combine(SampleSite.Folder(), "..", ".."));
        var crawl = await Ok("crawl", "--warc", warc, "--out", outDir, "--set", "Pipeline:Crawler:PagesPerShard=100");
        // Off a terminal, progress is plain lines: no carriage-return redraws in a log (#26).
        Assert.DoesNotContain('\r', crawl);
        Assert.Contains("warc: ", crawl);
        Assert.Contains("records", crawl);
        var raw = Directory.GetFiles(Path.Combine(outDir, "shards", "crawl"), "*.parquet", SearchOption.AllDirectories);
        Assert.Equal((pages + 99) / 100, raw.Length); // shards of 100 pages

        // An ablation from one command over the same raw shards: the default recipe against no filtering, two seeds each.
        var ablationDir = Path.Combine(_root, "ablation");
        string[] ablate = ["ablate", Path.Combine(outDir, "shards", "crawl"), "--name", "ab", "--arm", "default", "--arm", "unfiltered:recipe=none",
            "--steps", "20", "--seeds", "2", "--vocab", "400", "--eval-tasks", Path.Combine(repository, "tasks", "debian-cloze-en.yaml"), "--out", ablationDir];
        // Killed (SIGKILL) once its models are training, then run again: it goes on from what it recorded.
        using (var process = PipelineProcess.Start(ablate, []))
        {
            var deadline = DateTime.UtcNow.AddMinutes(3);
            while (!Directory.Exists(Path.Combine(ablationDir, "checkpoints")) || Directory.GetDirectories(Path.Combine(ablationDir, "checkpoints"), "step-*", SearchOption.AllDirectories).Length == 0)
            {
                Assert.False(process.HasExited, "the ablation finished before it was killed");
                Assert.True(DateTime.UtcNow < deadline, "the ablation trained nothing in time");
                await Task.Delay(20);
            }
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }
        Assert.False(File.Exists(Path.Combine(ablationDir, "reports", "ablation.md")));
        Assert.Contains("report at", await Ok(ablate));
        var ablation = File.ReadAllText(Path.Combine(ablationDir, "reports", "ablation.md"));
        Assert.Matches(@"\| default \| defaults \| [\d,]+ \| [\d,]+ \| \d+\.\d\d \|", ablation);
        Assert.Matches(@"\| unfiltered \| Pipeline:Cleaner:Recipe=none \| [\d,]+ \| [\d,]+ \| \d+\.\d\d \|", ablation);
        Assert.Matches(@"\| ab_heldout \| bits_per_byte \| unfiltered − default \| -?\d+\.\d{4}( \*)? \| \[-?\d+\.\d{4}, -?\d+\.\d{4}\] \|", ablation);
        Assert.Contains("| debian_cloze_en | acc | unfiltered − default |", ablation);
        using (var json = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(ablationDir, "reports", "ablation.json"))))
        {
            var arms = json.RootElement.GetProperty("arms").EnumerateArray().ToList();
            // No filter keeps at least what the default recipe keeps; every model saw the same number of tokens.
            Assert.True(arms[1].GetProperty("Documents").GetInt64() >= arms[0].GetProperty("Documents").GetInt64());
            Assert.Equal(4, json.RootElement.GetProperty("models").GetArrayLength());
        }
        Assert.True(File.Exists(Path.Combine(ablationDir, "reports", "ablation-ab-loss.png")));
        // Run again, it finds everything done and writes the same report.
        await Ok(ablate);
        Assert.Equal(ablation, File.ReadAllText(Path.Combine(ablationDir, "reports", "ablation.md")));
        // The same name with other options would reuse the wrong models: refused, naming what changed.
        await BadInputTests.FailsWith(null, "Steps was 20, now 21", [.. ablate.Select(a => a == "20" ? "21" : a)]);
        await BadInputTests.FailsWith(null, "--arm: an ablation compares two or more arms", "ablate", Path.Combine(outDir, "shards", "crawl"), "--name", "ab1", "--arm", "default", "--out", ablationDir);
        await BadInputTests.FailsWith(null, "Recpe", "ablate", Path.Combine(outDir, "shards", "crawl"), "--name", "ab2", "--arm", "default", "--arm", "x:Pipeline:Cleaner:Recpe=none", "--steps", "1", "--eval-tasks", "none", "--out", ablationDir);

        var clean = await Ok("clean", Path.Combine(outDir, "shards", "crawl"), "--out", outDir);
        Assert.Contains("gopher_repetition", clean);
        var report = File.ReadAllText(Path.Combine(outDir, "reports", "clean-report.json"));
        Assert.Contains("\"Kept\"", report);
        var again = await Ok("clean", Path.Combine(outDir, "shards", "crawl"), "--out", outDir);
        Assert.Contains("already done", again);
        // Regression: a rerun with nothing left to do overwrote the report with zeros.
        Assert.Equal(report, File.ReadAllText(Path.Combine(outDir, "reports", "clean-report.json")));

        var dedup = await Ok("dedup", Path.Combine(outDir, "shards", "clean"), "--out", outDir, "--stats");
        Assert.Contains("P(candidate) 14x8", dedup);
        Assert.Contains("kept documents", dedup);

        // Semantic dedup with D4's pruning: the removed documents are recorded for run "cli", so tokenization skips them.
        var semantic = await Ok("semdedup", Path.Combine(outDir, "shards", "dedup"), "--prototype-fraction", "0.05", "--out", outDir);
        Assert.Matches(@"semdedup: [\d,]+ documents in \d+ clusters; \d+ semantic duplicates and [1-9]\d* prototypes removed for run cli", semantic);
        Assert.True(File.Exists(Path.Combine(outDir, "reports", "semantic-dedup-cli.json")));
        await BadInputTests.FailsWith(null, "--prototype-fraction 1", "semdedup", Path.Combine(outDir, "shards", "dedup"), "--prototype-fraction", "1", "--out", outDir);

        await Ok("tokenizer", "train", Path.Combine(outDir, "shards", "dedup"), "--vocab", "600", "--out", outDir);
        var tokenizer = Path.Combine(outDir, "tokenizers", "cli");
        Assert.True(File.Exists(Path.Combine(tokenizer, "tokenizer.json")));
        var tokenize = await Ok("tokenize", Path.Combine(outDir, "shards", "dedup"), "--tokenizer", tokenizer, "--out", outDir, "--also-bin");
        Assert.Contains("training", tokenize);
        Assert.True(new FileInfo(Path.Combine(outDir, "shards", "tokens", "cli", "train.bin")).Length > 1024);

        var config = Path.Combine(_root, "train.json");
        File.WriteAllText(config, """{ "Training": { "RunName": "t", "Model": { "Layers": 2, "Heads": 2, "Width": 32, "Context": 128 }, "BatchSize": 4, "MaxSteps": 6, "EvalEvery": 3, "CheckpointEvery": 3, "LogEvery": 1 } }""");
        await Ok("train", "--config", config, "--out", outDir);
        var checkpoint = Path.Combine(outDir, "checkpoints", "t", "step-0000006");
        Assert.True(Directory.Exists(checkpoint));
        // Semantic dedup with the model's own embeddings (mean of its last hidden states), under a run of its own.
        var byModel = await Ok("semdedup", Path.Combine(outDir, "shards", "dedup"), "--checkpoint", checkpoint, "--run", "by-model", "--out", outDir);
        Assert.Matches(@"semdedup: [\d,]+ documents in \d+ clusters", byModel);
        Assert.Contains("step-0000006", File.ReadAllText(Path.Combine(outDir, "reports", "semantic-dedup-by-model.json")));
        var sample = await Ok("sample", "--checkpoint", checkpoint, "Debian", "--max-tokens", "5", "--temperature", "0");
        Assert.StartsWith("Debian", sample);
        // A smaller student distilled from it: the same job as train, with the teacher's divergence in its loss and the
        // teacher in its checkpoints' lineage.
        var student = Path.Combine(_root, "student.json");
        File.WriteAllText(student, """{ "Training": { "RunName": "s", "Model": { "Layers": 1, "Heads": 2, "Width": 32, "Context": 128 }, "BatchSize": 4, "MaxSteps": 3, "EvalEvery": 3, "CheckpointEvery": 3, "LogEvery": 1 } }""");
        var distilled = await Ok("distill", "--teacher", checkpoint, "--config", student, "--temperature", "2", "--out", outDir);
        Assert.Contains(" kd ", distilled);
        using (var info = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "checkpoints", "s", "step-0000003", "checkpoint.json"))))
        {
            Assert.Equal("distill", info.RootElement.GetProperty("Method").GetString());
            Assert.Equal(Path.GetFullPath(checkpoint), info.RootElement.GetProperty("BaseCheckpoint").GetString());
            Assert.Equal(2, info.RootElement.GetProperty("Config").GetProperty("Distillation").GetProperty("Temperature").GetDouble());
        }
        await BadInputTests.FailsWith(null, "teacher checkpoint", "distill", "--teacher", Path.Combine(_root, "no-teacher"), "--config", student, "--out", Path.Combine(_root, "s2"));
        // A JGLUE task in lm-evaluation-harness's YAML format, with a fixture in JCommonsenseQA's schema.
        var lmEval = Path.Combine(_root, "lm-eval");
        Directory.CreateDirectory(Path.Combine(lmEval, "data", "jcommonsenseqa"));
        File.Copy(Path.Combine(repository, "tasks", "lm-eval", "jcommonsenseqa.yaml"), Path.Combine(lmEval, "jcommonsenseqa.yaml"));
        foreach (var file in Directory.GetFiles(Path.Combine(repository, "tests", "Evaluator.Tests", "fixtures", "lm-eval", "data", "jcommonsenseqa")))
            File.Copy(file, Path.Combine(lmEval, "data", "jcommonsenseqa", Path.GetFileName(file)));
        var scored = await Ok("eval", "--checkpoint", checkpoint, "--task", Path.Combine(lmEval, "jcommonsenseqa.yaml"), "--out", outDir);
        Assert.Contains("jcommonsenseqa", scored);
        Assert.Contains("acc_norm", scored);

        await Ok("export", "--checkpoint", checkpoint, "--out", Path.Combine(_root, "export"));
        Assert.True(new FileInfo(Path.Combine(_root, "export", "model.safetensors")).Length > 10_000);
        Assert.Contains("LlamaForCausalLM", File.ReadAllText(Path.Combine(_root, "export", "config.json")));
        // One GGUF file (llama.cpp loads it in tests/Interop.Tests/GgufTests); --out must name a file, not a folder.
        var gguf = Path.Combine(_root, "gguf", "model.gguf");
        await Ok("export", "--checkpoint", checkpoint, "--format", "gguf", "--type", "q8_0", "--out", gguf);
        Assert.Equal("GGUF"u8.ToArray(), File.ReadAllBytes(gguf)[..4]);
        Assert.Equal([gguf], Directory.GetFiles(Path.GetDirectoryName(gguf)!)); // no temporary file left beside it
        await BadInputTests.FailsWith(null, "is a folder: --format gguf writes one file", "export", "--checkpoint", checkpoint, "--format", "gguf", "--out", _root);
        await BadInputTests.FailsWith(null, "q5_k", "export", "--checkpoint", checkpoint, "--format", "gguf", "--type", "q5_k", "--out", gguf);
        // An int8 copy (weights ÷ 3.5 or better) that sample and eval take, scored in a row of its own.
        var quantized = await Ok("quantize", "--checkpoint", checkpoint, "--type", "int8", "--out", outDir);
        Assert.Contains("int8", quantized);
        var int8 = Directory.GetDirectories(Path.Combine(outDir, "checkpoints", Path.GetFileName(Path.GetDirectoryName(checkpoint)) + "-int8")).Single();
        Assert.True(new FileInfo(Path.Combine(int8, "model.bin")).Length * 3.5 < new FileInfo(Path.Combine(checkpoint, "model.bin")).Length);
        await Ok("sample", "--checkpoint", int8, "Debian", "--max-tokens", "5", "--temperature", "0");
        Assert.Contains("jcommonsenseqa", await Ok("eval", "--checkpoint", int8, "--task", Path.Combine(lmEval, "jcommonsenseqa.yaml"), "--out", outDir));
        await BadInputTests.FailsWith(null, "is quantized (int8)", "export", "--checkpoint", int8, "--out", Path.Combine(_root, "int8-export"));
        // The exported folder imports back into a checkpoint the other commands take.
        var imported = Path.Combine(_root, "imported");
        await Ok("import", "--format", "hf", Path.Combine(_root, "export"), "--name", "back", "--out", imported);
        var fromImport = await Ok("sample", "--checkpoint", Path.Combine(imported, "checkpoints", "back", "step-0000006"), "Debian", "--max-tokens", "5", "--temperature", "0");
        Assert.Equal(sample.Split('\n')[0], fromImport.Split('\n')[0]);

        // Alignment on the small checkpoint: SFT with LoRA (adapter + merged checkpoint), a merge by hand, then DPO.
        var alignment = Path.Combine(SampleSite.Folder(), "..", "alignment");
        var sft = await Ok("align", "sft", "--base", checkpoint, "--data", Path.Combine(alignment, "sft-ja.jsonl"), "--lora-rank", "4", "--name", "sft", "--out", outDir);
        Assert.Contains("adapter", sft);
        var adapter = Path.Combine(outDir, "checkpoints", "sft", "adapter-step-0000100");
        Assert.True(new FileInfo(Path.Combine(adapter, "adapter.safetensors")).Length < new FileInfo(Path.Combine(checkpoint, "model.bin")).Length / 2);
        await Ok("lora", "merge", "--adapter", adapter, "--name", "merged", "--out", outDir);
        await Ok("export", "--adapter", adapter, "--out", Path.Combine(_root, "peft"));
        Assert.True(File.Exists(Path.Combine(_root, "peft", "adapter_model.safetensors")));
        Assert.Contains("\"peft_type\": \"LORA\"", File.ReadAllText(Path.Combine(_root, "peft", "adapter_config.json")));
        Assert.True(File.Exists(Path.Combine(outDir, "checkpoints", "merged", "step-0000100", "model.bin")));
        var dpo = await Ok("align", "dpo", "--base", Path.Combine(outDir, "checkpoints", "sft", "step-0000100"), "--data", Path.Combine(alignment, "dpo-ja.jsonl"), "--name", "dpo", "--out", outDir);
        Assert.Contains("reward margin", dpo);
        var lineage = File.ReadAllText(Path.Combine(outDir, "checkpoints", "dpo", "step-0000100", "lineage.json"));
        Assert.Contains("\"method\":\"dpo\"", lineage);

        // A reward model on the SFT checkpoint from the same pairs (LoRA, its head whole), then its scores and export.
        var pairs = Path.Combine(alignment, "dpo-ja.jsonl");
        var reward = await Ok("align", "reward", "--base", Path.Combine(outDir, "checkpoints", "sft", "step-0000100"), "--data", pairs, "--lora-rank", "4", "--name", "rm", "--out", outDir);
        Assert.Contains("held out 4 pairs", reward);
        var rewardModel = Path.Combine(outDir, "checkpoints", "rm", "step-0000100");
        Assert.True(File.Exists(Path.Combine(rewardModel, "reward-eval.json")));
        var scores = Path.Combine(_root, "scores.jsonl");
        Assert.Contains("chosen preferred in", await Ok("reward", "score", "--model", rewardModel, "--data", pairs, "--out", scores));
        var rewards = File.ReadAllLines(scores).Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(File.ReadAllLines(pairs).Count(l => l.Trim().Length > 0), rewards.Count);
        Assert.All(rewards, s => Assert.True(Math.Abs(s.GetProperty("chosen").GetDouble() - s.GetProperty("rejected").GetDouble() - s.GetProperty("margin").GetDouble()) < 1e-5, s.ToString()));
        await BadInputTests.FailsWith(null, "not a reward model", "reward", "score", "--model", checkpoint, "--data", pairs, "--out", scores);
        await Ok("export", "--checkpoint", rewardModel, "--out", Path.Combine(_root, "rm-export"));
        Assert.Contains("LlamaForSequenceClassification", File.ReadAllText(Path.Combine(_root, "rm-export", "config.json")));
        await BadInputTests.FailsWith(null, "is a reward model", "export", "--checkpoint", rewardModel, "--format", "gguf", "--out", Path.Combine(_root, "rm.gguf"));

        // GRPO from the SFT checkpoint: rewarded by the continuation task's own scoring rule, then by the reward model.
        var sftFinal = Path.Combine(outDir, "checkpoints", "sft", "step-0000100");
        var grpoConfig = Path.Combine(_root, "grpo.json");
        File.WriteAllText(grpoConfig, """{ "Steps": 2, "BatchSize": 2, "Generations": 2, "MaxNewTokens": 8 }""");
        var continuation = Path.Combine(repository, "tasks", "debian-continuation-ja-chat.yaml");
        Assert.Contains("mean reward", await Ok("align", "grpo", "--base", sftFinal, "--data", continuation, "--verifier", "char_f1", "--config", grpoConfig, "--name", "grpo", "--out", outDir));
        Assert.Contains("\"method\":\"grpo\"", File.ReadAllText(Path.Combine(outDir, "checkpoints", "grpo", "step-0000002", "lineage.json")));
        Assert.Contains("mean reward", await Ok("align", "grpo", "--base", sftFinal, "--data", pairs, "--reward", rewardModel, "--config", grpoConfig, "--name", "grpo-rm", "--out", outDir));
        // PPO from the same checkpoint and reward model: its value head trains on the policy's trunk and is not saved.
        Assert.Contains("mean reward", await Ok("align", "ppo", "--base", sftFinal, "--data", pairs, "--reward", rewardModel, "--config", grpoConfig, "--name", "ppo", "--out", outDir));
        var ppo = Path.Combine(outDir, "checkpoints", "ppo", "step-0000002");
        Assert.Contains("\"method\":\"ppo\"", File.ReadAllText(Path.Combine(ppo, "lineage.json")));
        await Ok("export", "--checkpoint", ppo, "--out", Path.Combine(_root, "ppo-export"));
        Assert.Contains("LlamaForCausalLM", File.ReadAllText(Path.Combine(_root, "ppo-export", "config.json")));
        // kill -9 of a PPO job once it has saved its state: the same command again goes on from that step to the last.
        var killConfig = Path.Combine(_root, "ppo-kill.json");
        File.WriteAllText(killConfig, """{ "Steps": 60, "BatchSize": 2, "MaxNewTokens": 8, "SaveEvery": 2 }""");
        string[] killed = ["align", "ppo", "--base", sftFinal, "--data", pairs, "--reward", rewardModel, "--config", killConfig, "--name", "ppo-kill", "--out", outDir];
        var resumeState = Path.Combine(outDir, "checkpoints", "ppo-kill", "resume");
        List<long> SavedSteps() => !Directory.Exists(resumeState) ? [] : [.. Directory.GetDirectories(resumeState, "step-*")
            .Select(Path.GetFileName).Where(n => !n!.EndsWith(".tmp", StringComparison.Ordinal)).Select(n => long.Parse(n!["step-".Length..]))];
        using (var process = PipelineProcess.Start(killed, []))
        {
            var deadline = DateTime.UtcNow.AddMinutes(2);
            while (SavedSteps().Count == 0)
            {
                Assert.False(process.HasExited, "the PPO job finished before it was killed");
                Assert.True(DateTime.UtcNow < deadline, "the PPO job saved no state in time");
                await Task.Delay(20);
            }
            process.Kill(entireProcessTree: true); // SIGKILL: no shutdown code runs
            await process.WaitForExitAsync();
        }
        // The last state saved (a kill between writing the new one and deleting the old one leaves both).
        var saved = SavedSteps().Max();
        Assert.InRange(saved, 2, 58);
        Assert.Contains($"resumed from the state saved at step {saved}", await Ok(killed));
        Assert.True(File.Exists(Path.Combine(outDir, "checkpoints", "ppo-kill", "step-0000060", "model.bin")));
        Assert.False(Directory.Exists(resumeState));

        await BadInputTests.FailsWith(null, "exactly one reward", "align", "grpo", "--base", sftFinal, "--data", pairs, "--config", grpoConfig, "--name", "grpo-none", "--out", outDir);
        await BadInputTests.FailsWith(null, "has no answer", "align", "grpo", "--base", sftFinal, "--data", pairs, "--verifier", "exact_match", "--config", grpoConfig, "--name", "grpo-none", "--out", outDir);

        var (exit, output) = await Pipeline("clean", Path.Combine(_root, "nowhere"), "--out", outDir);
        Assert.NotEqual(0, exit);
        Assert.Contains("nowhere", output);
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
