using System.Text.Json.Nodes;
using Pipeline.Alignment;
using Pipeline.Model;
using static TorchSharp.torch;

namespace Pipeline.Interop;

/// <summary>
/// Writes a LoRA adapter in PEFT's layout (adapter_config.json + adapter_model.safetensors) for a base exported with
/// <see cref="HuggingFaceExport"/>. The fused q/k/v adapter splits exactly: its A is shared, and B's row blocks give
/// q_proj, k_proj and v_proj, since (α/r)·B·A restricted to a row block is (α/r)·B_rows·A. PEFT scales by
/// lora_alpha / r, as this project does.
/// </summary>
public static class PeftExport
{
    private const string Prefix = "base_model.model.model.layers.";

    /// <param name="baseName">
    /// What PEFT loads the base from (base_model_name_or_path): a hub id or a relative path, which PEFT (through
    /// transformers' from_pretrained) resolves against the working directory of the Python process, not the adapter's folder.
    /// </param>
    public static void Write(string adapterFolder, string outDir, string baseName)
    {
        if (Path.IsPathRooted(baseName)) throw new ArgumentException($"--base-name '{baseName}': give a model id or a relative path, not an absolute one");
        var adapter = AlignmentJob.ReadAdapter(adapterFolder);
        var config = adapter.Info.Config.Model;
        if (config.ScoreHead)
            throw new NotSupportedException($"adapter '{adapterFolder}' is a reward model's: its score head trains whole beside the adapters, which this " +
                                            "export does not write; export the reward model itself (`pipeline export --checkpoint`, LlamaForSequenceClassification)");
        var tensors = Safetensors.ReadAll(Path.Combine(adapterFolder, "adapter.safetensors"));
        Tensor Get(string name) => tensors.TryGetValue(name, out var t) ? t : throw new InvalidDataException($"adapter '{adapterFolder}' has no tensor '{name}'");
        var peft = new List<KeyValuePair<string, Tensor>>();
        void Add(int layer, string module, Tensor a, Tensor b)
        {
            peft.Add(new($"{Prefix}{layer}.{module}.lora_A.weight", a));
            peft.Add(new($"{Prefix}{layer}.{module}.lora_B.weight", b));
        }
        var targets = new List<string>();
        for (var i = 0; i < config.Layers; i++)
        {
            var ours = $"blocks.{i}.";
            if (adapter.Config.LoraTargets.Contains("attn"))
            {
                var a = Get(ours + "attn.qkv.lora_A");
                var b = Get(ours + "attn.qkv.lora_B").split(config.Width, dim: 0);
                Add(i, "self_attn.q_proj", a, b[0]);
                Add(i, "self_attn.k_proj", a, b[1]);
                Add(i, "self_attn.v_proj", a, b[2]);
                Add(i, "self_attn.o_proj", Get(ours + "attn.proj.lora_A"), Get(ours + "attn.proj.lora_B"));
            }
            if (adapter.Config.LoraTargets.Contains("mlp"))
                foreach (var (module, name) in new[] { ("mlp.gate_proj", "mlp.gate"), ("mlp.up_proj", "mlp.up"), ("mlp.down_proj", "mlp.down") })
                    Add(i, module, Get(ours + name + ".lora_A"), Get(ours + name + ".lora_B"));
        }
        if (adapter.Config.LoraTargets.Contains("attn")) targets.AddRange(["q_proj", "k_proj", "v_proj", "o_proj"]);
        if (adapter.Config.LoraTargets.Contains("mlp")) targets.AddRange(["gate_proj", "up_proj", "down_proj"]);

        Directory.CreateDirectory(outDir);
        using (no_grad())
            Safetensors.Save(peft, Path.Combine(outDir, "adapter_model.safetensors"), new Dictionary<string, string> { ["format"] = "pt" });
        HuggingFaceExport.Write(outDir, "adapter_config.json", new JsonObject
        {
            ["peft_type"] = "LORA",
            ["task_type"] = "CAUSAL_LM",
            ["base_model_name_or_path"] = baseName,
            ["r"] = adapter.Config.LoraRank,
            ["lora_alpha"] = adapter.Config.LoraAlpha,
            ["lora_dropout"] = adapter.Config.LoraDropout,
            ["target_modules"] = new JsonArray(targets.Select(t => (JsonNode)t).ToArray()),
            ["bias"] = "none",
            ["fan_in_fan_out"] = false,
            ["use_rslora"] = false,
            ["use_dora"] = false,
            ["inference_mode"] = true,
            ["modules_to_save"] = null,
        });
        foreach (var t in tensors.Values) t.Dispose();
    }
}
