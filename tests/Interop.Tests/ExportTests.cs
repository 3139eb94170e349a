using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using Pipeline.Contracts.Rows;
using Pipeline.Alignment;
using Pipeline.Cleaner;
using Pipeline.Contracts.V1;
using Pipeline.Model;
using Pipeline.Storage;
using Pipeline.Bpe;
using TorchSharp;
using static TorchSharp.torch;
using Pipeline.Contracts.Checkpoints;

namespace Pipeline.Interop.Tests;

/// <summary>
/// Exports checked by code that does not trust the exporter: a Llama forward pass written in numpy from the published
/// architecture, PEFT's merge formula in numpy, Jinja2 rendering the chat template, Hugging Face tokenizers, and
/// llm.c's reader.
/// </summary>
public sealed class ExportTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("interop-").FullName;

    private static readonly string[] Prompts =
    [
        "Debian は「ユニバーサルオペレーティングシステム」です。",
        "The Debian project is an association of individuals who have made common cause.",
        "apt-get install 123 パッケージ and then dpkg -l",
    ];

    private (TextTokenizer Tokenizer, Gpt Model, string Checkpoint) Fixture() => Fixture(_root);

    /// <summary>
    /// A tokenizer trained on sample pages and a small random model saved as a checkpoint under <paramref name="root"/>.
    /// <paramref name="weightStd"/> above 0 draws every matrix from N(0, std²): a model with logits far apart, whose
    /// greedy choices and per-token losses show any mistake in a weight's layout.
    /// </summary>
    internal static (TextTokenizer Tokenizer, Gpt Model, string Checkpoint) Fixture(string root, int context = 32, double weightStd = 0)
    {
        var site = Path.Combine(Ecosystem.Folder, "..", "..", "samples", "site");
        var texts = Directory.GetFiles(site, "*.html", SearchOption.AllDirectories).Order(StringComparer.Ordinal).Take(60)
            .Select(f => TextExtractor.Extract(File.ReadAllText(f)).Text).ToList();
        var folder = Path.Combine(root, "tokenizers", "base");
        new BpeTrainer(700).Train(texts).Save(folder);
        var tokenizer = TextTokenizer.Load(folder);
        manual_seed(7);
        var model = new Gpt(new GptConfig { VocabSize = tokenizer.VocabSize, Layers = 2, Heads = 2, Width = 32, Context = context, RopeTheta = 500 });
        using (no_grad())
            foreach (var (name, p) in model.named_parameters())
                if (name.EndsWith("norm1.weight") || name.EndsWith("norm2.weight") || name == "norm.weight") p.copy_(rand_like(p) + 0.5); // not all ones: the norms' mapping is checked too
                else if (weightStd > 0) p.copy_(randn_like(p) * weightStd);
        var info = new CheckpointInfo("base", 40, 0, tokenizer.Hash, null, new TrainingConfig { RunName = "base", Model = model.Config });
        var checkpoint = Checkpoints.Save(Path.Combine(root, "checkpoints", "base"), model, null, info, keepLast: 1);
        return (tokenizer, model, checkpoint);
    }

    private static float[][] Logits(Gpt model, IReadOnlyList<int> ids)
    {
        model.eval();
        using var _ = no_grad();
        using var logits = model.forward(tensor(ids.Select(i => (long)i).ToArray(), [1, ids.Count]));
        return Enumerable.Range(0, ids.Count).Select(t => logits[0, t].data<float>().ToArray()).ToArray();
    }

    private List<List<int>> PromptIds(TextTokenizer tokenizer) => Prompts.Select(p => tokenizer.Encode(p).Take(32).ToList()).ToList();

    [Fact]
    public void The_exported_model_is_a_Llama_that_an_independent_numpy_forward_reproduces()
    {
        var (tokenizer, model, checkpoint) = Fixture();
        var export = Path.Combine(_root, "hf");
        HuggingFaceExport.Write(model, Checkpoints.ReadInfo(checkpoint), tokenizer, export);
        using (var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(export, "config.json"))))
        {
            Assert.Equal("llama", config.RootElement.GetProperty("model_type").GetString());
            Assert.Equal(500, config.RootElement.GetProperty("rope_theta").GetDouble());
        }
        var names = Safetensors.ReadHeader(Path.Combine(export, "model.safetensors")).Tensors.Keys.ToHashSet();
        Assert.Contains("model.layers.1.self_attn.k_proj.weight", names);
        Assert.Contains("model.layers.0.post_attention_layernorm.weight", names);
        Assert.DoesNotContain(names, n => n.StartsWith("blocks."));

        var ids = PromptIds(tokenizer);
        File.WriteAllText(Path.Combine(_root, "ids.json"), JsonSerializer.Serialize(ids));
        Ecosystem.Python("llama_forward.py", export, Path.Combine(_root, "ids.json"), Path.Combine(_root, "logits.json"));
        var reference = JsonSerializer.Deserialize<double[][][]>(File.ReadAllText(Path.Combine(_root, "logits.json")))!;
        var worst = 0.0;
        for (var s = 0; s < ids.Count; s++)
        {
            var ours = Logits(model, ids[s]);
            for (var t = 0; t < ids[s].Count; t++)
                for (var v = 0; v < ours[t].Length; v++)
                    worst = Math.Max(worst, Math.Abs(ours[t][v] - reference[s][t][v]));
        }
        Assert.True(worst < 1e-4, $"largest logit difference {worst}");
    }

    [Fact]
    public void A_reward_model_exports_as_LlamaForSequenceClassification_that_numpy_scores_alike()
    {
        var (tokenizer, model, checkpoint) = Fixture(_root, weightStd: 0.05);
        var rewardModel = model.WithScoreHead();
        using (no_grad()) rewardModel.ScoreHead!.weight!.copy_(randn_like(rewardModel.ScoreHead.weight!)); // a head far from 0
        var info = Checkpoints.ReadInfo(checkpoint);
        var export = Path.Combine(_root, "rm");
        HuggingFaceExport.Write(rewardModel, info with { Config = info.Config with { Model = rewardModel.Config } }, tokenizer, export);
        using (var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(export, "config.json"))))
            Assert.Equal("LlamaForSequenceClassification", config.RootElement.GetProperty("architectures")[0].GetString());
        Assert.Contains("score.weight", Safetensors.ReadHeader(Path.Combine(export, "model.safetensors")).Tensors.Keys);

        // Rows right-padded with the pad token, as transformers batches them: the reward is read at the last real token.
        var ids = PromptIds(tokenizer);
        var pad = tokenizer.SpecialIds[SpecialTokens.Pad];
        var longest = ids.Max(i => i.Count);
        File.WriteAllText(Path.Combine(_root, "ids.json"), JsonSerializer.Serialize(ids.Select(i => i.Concat(Enumerable.Repeat(pad, longest - i.Count)))));
        Ecosystem.Python("llama_forward.py", export, Path.Combine(_root, "ids.json"), Path.Combine(_root, "rewards.json"));
        var reference = JsonSerializer.Deserialize<double[]>(File.ReadAllText(Path.Combine(_root, "rewards.json")))!;
        rewardModel.eval();
        using (no_grad())
        {
            var ours = AlignmentTrainer.Rewards(rewardModel, ids, pad, CPU).data<float>().ToArray();
            Assert.Equal(ids.Count, reference.Length);
            for (var s = 0; s < ids.Count; s++) Assert.True(Math.Abs(ours[s] - reference[s]) < 1e-4, $"sequence {s}: ours {ours[s]}, numpy {reference[s]}");
            Assert.True(reference.Max() - reference.Min() > 0.01, "the rewards do not depend on the text");
        }

        // llama.cpp's llama architecture has no score head: the GGUF export refuses, naming why.
        var error = Assert.Throws<NotSupportedException>(() => Release.GgufExport.Write(rewardModel, info, tokenizer, new MemoryStream(), Release.GgmlType.F32));
        Assert.Contains("reward model", error.Message);
    }

    [Fact]
    public void Export_then_import_gives_identical_logits_and_tokenizer_and_unsupported_shapes_are_refused()
    {
        var (tokenizer, model, checkpoint) = Fixture();
        var export = Path.Combine(_root, "hf");
        HuggingFaceExport.Write(model, Checkpoints.ReadInfo(checkpoint), tokenizer, export);
        var target = Path.Combine(_root, "imported-root");
        var imported = HuggingFaceImport.Import(export, target, "imported");
        Assert.Equal(tokenizer.Hash, imported.TokenizerHash);
        Assert.Equal(tokenizer.Hash, TextTokenizer.Load(imported.TokenizerFolder).Hash);
        var (back, info) = Checkpoints.Load(imported.Checkpoint, CPU);
        Assert.Equal(40, info.Step);
        foreach (var ids in PromptIds(tokenizer))
            Assert.Equal(Logits(model, ids).SelectMany(r => r), Logits(back, ids).SelectMany(r => r));

        // Grouped-query attention (and other shapes this model lacks) are refused by name, and nothing is written.
        var config = File.ReadAllText(Path.Combine(export, "config.json"));
        File.WriteAllText(Path.Combine(export, "config.json"), config.Replace("\"num_key_value_heads\": 2", "\"num_key_value_heads\": 1"));
        var e = Assert.Throws<NotSupportedException>(() => HuggingFaceImport.Import(export, Path.Combine(_root, "gqa-root"), "gqa"));
        Assert.Contains("grouped-query attention", e.Message);
        File.WriteAllText(Path.Combine(export, "config.json"), config.Replace("\"tie_word_embeddings\": true", "\"tie_word_embeddings\": false"));
        Assert.Contains("tie_word_embeddings", Assert.Throws<NotSupportedException>(() => HuggingFaceImport.Import(export, Path.Combine(_root, "gqa-root"), "gqa")).Message);
        Assert.False(Directory.Exists(Path.Combine(_root, "gqa-root", "checkpoints")));
        Assert.False(Directory.Exists(Path.Combine(_root, "gqa-root", "tokenizers")));
    }

    [Fact]
    public void The_chat_template_in_Jinja_renders_what_ChatTemplate_encodes()
    {
        var (tokenizer, model, checkpoint) = Fixture();
        var export = Path.Combine(_root, "hf");
        HuggingFaceExport.Write(model, Checkpoints.ReadInfo(checkpoint), tokenizer, export);
        var conversations = new[]
        {
            (Messages: new[] { new ChatMessage("user", "日本の首都は?"), new ChatMessage("assistant", "東京です。") }, Open: false),
            (Messages: new[] { new ChatMessage("system", "You answer briefly."), new ChatMessage("user", "1+1?"), new ChatMessage("assistant", "2"), new ChatMessage("user", "and 2+2?") }, Open: true),
            (Messages: new[] { new ChatMessage("user", "  spaces\nand lines  "), new ChatMessage("assistant", "ok\r\n") }, Open: false),
        };
        File.WriteAllText(Path.Combine(_root, "conversations.json"), JsonSerializer.Serialize(conversations.Select(c => new
        {
            messages = c.Messages.Select(m => new { role = m.Role, content = m.Content }),
            add_generation_prompt = c.Open,
        })));
        Ecosystem.Python("chat_template.py", Path.Combine(export, "tokenizer_config.json"), Path.Combine(_root, "conversations.json"), Path.Combine(_root, "rendered.json"));
        var rendered = JsonSerializer.Deserialize<string[]>(File.ReadAllText(Path.Combine(_root, "rendered.json")))!;
        var template = new ChatTemplate(tokenizer);
        for (var i = 0; i < conversations.Length; i++)
        {
            var ids = template.Encode(conversations[i].Messages, conversations[i].Open).Ids;
            // Hugging Face tokenizers reads the special tokens out of the rendered text (added tokens): same ids.
            var input = Path.Combine(_root, $"rendered-{i}.txt");
            File.WriteAllText(input, rendered[i]);
            Ecosystem.Node("hf-tokenizers.mjs", Path.Combine(export, "tokenizer.json"), input, Path.Combine(_root, $"hf-{i}.json"));
            using var hf = JsonDocument.Parse(File.ReadAllText(Path.Combine(_root, $"hf-{i}.json")));
            Assert.Equal(ids, hf.RootElement.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()));
        }
        Assert.EndsWith("<|assistant|>", rendered[1]);
    }

    [Fact]
    public void A_LoRA_adapter_in_PEFT_layout_merges_by_PEFT_formula_to_the_projects_merge()
    {
        var (tokenizer, _, checkpoint) = Fixture();
        var data = Path.Combine(_root, "sft.jsonl");
        File.WriteAllText(data, string.Concat(Enumerable.Range(0, 8).Select(i => JsonSerializer.Serialize(new { instruction = $"質問 {i}: Debian とは?", output = $"答え {i}: 自由なオペレーティングシステムです。" }) + "\n")));
        var config = new AlignmentConfig { Steps = 5, BatchSize = 4, LearningRate = 0.05, LoraRank = 4, LoraAlpha = 8, LoraTargets = ["attn", "mlp"] };
        var result = new AlignmentJob(NullLogger.Instance).Run(checkpoint, tokenizer, data, config, Path.Combine(_root, "checkpoints", "sft"), "sft");
        var adapterJson = File.ReadAllText(Path.Combine(result.Adapter!, "adapter.json"));
        Assert.DoesNotContain(_root, adapterJson); // the base is named relative to the adapter, not by absolute path

        // The README's layout and commands: both exported under out/, the adapter naming its base from the directory
        // Python runs in, which is where PEFT resolves it (#31: "../base" resolved against the working directory).
        var work = Path.Combine(_root, "work");
        var baseDir = Path.Combine(work, "out", "base");
        var (baseModel, baseInfo, _) = (Checkpoints.Load(checkpoint, CPU).Model, Checkpoints.ReadInfo(checkpoint), 0);
        HuggingFaceExport.Write(baseModel, baseInfo, tokenizer, baseDir);
        using (var hfConfig = JsonDocument.Parse(File.ReadAllText(Path.Combine(baseDir, "config.json"))))
            Assert.Equal(JsonValueKind.Null, hfConfig.RootElement.GetProperty("bos_token_id").ValueKind); // the tokenizer has no BOS token
        var adapterDir = Path.Combine(work, "out", "adapter");
        PeftExport.Write(result.Adapter!, adapterDir, "out/base");
        var mergedDir = Path.Combine(_root, "export", "merged");
        var merged = AlignmentJob.Merge(result.Adapter!, Path.Combine(_root, "checkpoints", "merged"));
        var (mergedModel, mergedInfo) = Checkpoints.Load(merged, CPU);
        HuggingFaceExport.Write(mergedModel, mergedInfo, tokenizer, mergedDir);

        using (var peft = JsonDocument.Parse(File.ReadAllText(Path.Combine(adapterDir, "adapter_config.json"))))
        {
            Assert.Equal("out/base", peft.RootElement.GetProperty("base_model_name_or_path").GetString());
            Assert.Equal(["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"], peft.RootElement.GetProperty("target_modules").EnumerateArray().Select(e => e.GetString()));
        }
        Ecosystem.PythonIn(work, "peft_merge.py", "-", "out/adapter", mergedDir, Path.Combine(_root, "peft.json"));
        using var check = JsonDocument.Parse(File.ReadAllText(Path.Combine(_root, "peft.json")));
        Assert.Equal(2 * 7, check.RootElement.GetProperty("adapted").GetInt32());
        Assert.True(check.RootElement.GetProperty("max_abs_diff").GetDouble() < 1e-5, check.RootElement.ToString());
        // And the adapter really moved the weights (a zero B would pass the comparison trivially).
        var baseQ = Safetensors.ReadAll(Path.Combine(baseDir, "model.safetensors"))["model.layers.0.self_attn.q_proj.weight"];
        var mergedQ = Safetensors.ReadAll(Path.Combine(mergedDir, "model.safetensors"))["model.layers.0.self_attn.q_proj.weight"];
        Assert.True((baseQ - mergedQ).abs().max().item<float>() > 1e-4);
    }

    [Fact]
    public async Task Token_files_in_llm_c_format_read_back_in_python()
    {
        var store = new ShardStore(Path.Combine(_root, "data"));
        var random = new Random(5);
        var all = new List<(string Split, int[] Ids)>();
        var rows = Enumerable.Range(0, 30).Select(i =>
        {
            var ids = Enumerable.Range(0, random.Next(5, 40)).Select(_ => random.Next(1000)).ToArray();
            var split = i % 5 == 0 ? "validation" : "train";
            all.Add((split, ids));
            return new TokenRow { DocId = $"d{i}", Split = split, Count = ids.Length, Tokens = TokenRow.Pack(ids, false) };
        }).ToList();
        var shard = await store.WriteParquetAsync("tokens/tokens-1.parquet", rows, new ShardDescriptor("t1", "tokenize", "", [], "r"));
        await new TokenManifest("h", "tokenizers/r", 1000, "uint16", [new TokenShardEntry(shard.ShardId, shard.Uri, shard.Sha256, 0, 0)]).CommitAsync(store, "tokens/manifest.json");
        var (train, validation) = await LlmcTokenFiles.WriteAsync(store, "tokens/manifest.json", Path.Combine(_root, "bin"));
        foreach (var (file, split, count) in new[] { ("train.bin", "train", train), ("val.bin", "validation", validation) })
        {
            Ecosystem.Python("llmc_read.py", Path.Combine(_root, "bin", file), Path.Combine(_root, file + ".json"));
            using var read = JsonDocument.Parse(File.ReadAllText(Path.Combine(_root, file + ".json")));
            Assert.Equal(20240520, read.RootElement.GetProperty("magic").GetInt32());
            Assert.Equal(1, read.RootElement.GetProperty("version").GetInt32());
            Assert.Equal(count, read.RootElement.GetProperty("count").GetInt64());
            Assert.Equal(all.Where(a => a.Split == split).SelectMany(a => a.Ids), read.RootElement.GetProperty("tokens").EnumerateArray().Select(e => e.GetInt32()));
        }
    }

    public void Dispose() => Directory.Delete(_root, true);
}
