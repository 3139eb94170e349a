using System.Text.Json.Nodes;
using Pipeline.Model;
using Pipeline.Bpe;
using static TorchSharp.torch;
using Pipeline.Contracts.Checkpoints;
using Pipeline.Release;

namespace Pipeline.Interop;

/// <summary>
/// Reads a Hugging Face Llama model folder into a checkpoint that `train` (continued pretraining), `align` and
/// `eval` accept. Whatever this model cannot represent is refused by name before anything is written: grouped-query
/// attention, untied embeddings, biases, rope scaling, another activation, norm epsilon or MLP width, and tokenizers
/// other than this project's byte-level BPE.
/// </summary>
public static class HuggingFaceImport
{
    public sealed record Imported(string Checkpoint, string TokenizerFolder, string TokenizerHash);

    /// <param name="dataRoot">The output folder: the checkpoint goes to checkpoints/&lt;name&gt;/step-N, the tokenizer to tokenizers/&lt;name&gt;.</param>
    public static Imported Import(string hfDir, string dataRoot, string runName)
    {
        var configPath = Path.Combine(hfDir, "config.json");
        if (!File.Exists(configPath)) throw new FileNotFoundException($"'{hfDir}' has no config.json; not a Hugging Face model folder", configPath);
        var hf = JsonNode.Parse(File.ReadAllText(configPath))!.AsObject();
        var config = ModelConfig(hf, configPath);
        var tokenizer = SourceTokenizer(hfDir);
        if (tokenizer.VocabSize != config.VocabSize)
            throw new NotSupportedException($"{configPath}: vocab_size {config.VocabSize} differs from the tokenizer's {tokenizer.VocabSize}");

        var weights = Path.Combine(hfDir, "model.safetensors");
        if (!File.Exists(weights)) throw new FileNotFoundException($"'{hfDir}' has no model.safetensors (sharded or .bin checkpoints are not supported)", weights);
        var tensors = Safetensors.ReadAll(weights);
        var (_, metadata, _) = Safetensors.ReadHeader(weights);
        var model = new Gpt(config);
        using (no_grad())
        {
            var state = model.state_dict();
            foreach (var (name, source) in LlamaLayout.FromHuggingFace(tensors, config))
            {
                var target = state[name];
                if (!target.shape.SequenceEqual(source.shape))
                    throw new InvalidDataException($"{weights}: tensor for '{name}' has shape [{string.Join(", ", source.shape)}], the model expects [{string.Join(", ", target.shape)}]");
                target.copy_(source);
            }
        }
        // Everything is checked; only now is anything written.
        var tokenizerFolder = Path.Combine(dataRoot, "tokenizers", runName);
        CopyTokenizer(hfDir, tokenizerFolder);
        var step = metadata.TryGetValue("step", out var s) && long.TryParse(s, out var n) ? n : 0;
        var info = new CheckpointInfo(runName, step, 0, tokenizer.Hash, null, new TrainingConfig { RunName = runName, Model = config });
        var checkpoint = Checkpoints.Save(Path.Combine(dataRoot, Checkpoints.RunFolder(runName)), model, null, info, keepLast: int.MaxValue);
        foreach (var t in tensors.Values) t.Dispose();
        return new Imported(checkpoint, tokenizerFolder, tokenizer.Hash);
    }

    private static GptConfig ModelConfig(JsonObject hf, string path)
    {
        T Get<T>(string key) => hf[key] is { } node ? node.GetValue<T>() : throw new InvalidDataException($"{path}: '{key}' is missing");
        T Or<T>(string key, T fallback) => hf[key] is { } node ? node.GetValue<T>() : fallback;
        void Require(bool ok, string what)
        {
            if (!ok) throw new NotSupportedException($"{path}: {what} is not supported by this model");
        }
        Require(Or("model_type", "") == "llama", $"model_type '{Or("model_type", "")}' (only llama)");
        var heads = Get<int>("num_attention_heads");
        var kvHeads = Or("num_key_value_heads", heads);
        Require(kvHeads == heads, $"grouped-query attention (num_key_value_heads {kvHeads} < num_attention_heads {heads})");
        Require(Or("tie_word_embeddings", false), "tie_word_embeddings=false (untied output embeddings)");
        Require(Or("hidden_act", "silu") == "silu", $"hidden_act '{Or("hidden_act", "")}'");
        Require(!Or("attention_bias", false), "attention_bias=true");
        Require(!Or("mlp_bias", false), "mlp_bias=true");
        Require(hf["rope_scaling"] is null, "rope_scaling");
        Require(Math.Abs(Or("rms_norm_eps", LlamaLayout.RmsNormEps) - LlamaLayout.RmsNormEps) < 1e-12, $"rms_norm_eps {Or("rms_norm_eps", 0.0)} (only {LlamaLayout.RmsNormEps})");
        var config = new GptConfig
        {
            VocabSize = Get<int>("vocab_size"),
            Layers = Get<int>("num_hidden_layers"),
            Heads = heads,
            Width = Get<int>("hidden_size"),
            Context = Get<int>("max_position_embeddings"),
            RopeTheta = Or("rope_theta", 10_000.0),
        };
        Require(Or("head_dim", config.HeadDim) == config.HeadDim, $"head_dim {Or("head_dim", 0)} other than hidden_size / num_attention_heads");
        Require(Get<int>("intermediate_size") == config.MlpHidden, $"intermediate_size {Get<int>("intermediate_size")} (this model's SwiGLU width for hidden_size {config.Width} is {config.MlpHidden})");
        config.Validate();
        return config;
    }

    private static TextTokenizer SourceTokenizer(string hfDir)
    {
        if (!File.Exists(Path.Combine(hfDir, "tokenizer-meta.json")) || !File.Exists(Path.Combine(hfDir, "tokenizer.tiktoken")))
            throw new NotSupportedException($"'{hfDir}': only tokenizers exported by this project (tokenizer-meta.json and tokenizer.tiktoken beside tokenizer.json) can be imported");
        return TextTokenizer.Load(hfDir);
    }

    private static void CopyTokenizer(string hfDir, string folder)
    {
        Directory.CreateDirectory(folder);
        foreach (var name in new[] { "tokenizer-meta.json", "tokenizer.tiktoken", "tokenizer.json", "vocab.json", "merges.txt" })
            if (File.Exists(Path.Combine(hfDir, name))) File.Copy(Path.Combine(hfDir, name), Path.Combine(folder, name), overwrite: true);
    }
}
