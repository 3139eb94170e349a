using Pipeline.Contracts.Checkpoints;
using static TorchSharp.torch;

namespace Pipeline.Model.Tests;

public sealed class DistillationTests
{
    [Fact]
    public void The_loss_is_alpha_cross_entropy_plus_T_squared_KL_as_written_out_by_hand()
    {
        manual_seed(11);
        var student = randn(2, 3, 7);
        var teacher = randn(2, 3, 7) * 2;
        var targets = randint(0, 7, [2, 3]);
        var config = new DistillationConfig { Teacher = "t", Temperature = 2, Alpha = 0.3 };

        // By hand over the 6 positions: softmax at temperature 2, KL(teacher || student), cross-entropy at temperature 1.
        double ce = 0, forward = 0, reverse = 0;
        var s = student.reshape(6, 7).data<float>().ToArray();
        var t = teacher.reshape(6, 7).data<float>().ToArray();
        var y = targets.reshape(6).data<long>().ToArray();
        for (var i = 0; i < 6; i++)
        {
            var row = s.Skip(7 * i).Take(7).Select(v => (double)v).ToArray();
            var teach = t.Skip(7 * i).Take(7).Select(v => (double)v).ToArray();
            ce += -(row[y[i]] - Math.Log(row.Sum(Math.Exp)));
            var ps = Softmax(row.Select(v => v / 2).ToArray());
            var pt = Softmax(teach.Select(v => v / 2).ToArray());
            forward += pt.Zip(ps, (a, b) => a * Math.Log(a / b)).Sum();
            reverse += ps.Zip(pt, (a, b) => a * Math.Log(a / b)).Sum();
        }
        (ce, forward, reverse) = (ce / 6, forward / 6, reverse / 6);

        var parts = Distillation.Loss(student, teacher, targets, config);
        Assert.Equal(ce, parts.CrossEntropy.item<float>(), 4);
        Assert.Equal(forward, parts.Divergence.item<float>(), 4);
        Assert.Equal(0.3 * ce + 0.7 * 4 * forward, parts.Loss.item<float>(), 4);
        Assert.Equal(reverse, Distillation.Loss(student, teacher, targets, config with { Divergence = "reverse" }).Divergence.item<float>(), 4);
        // A student that is its teacher diverges by nothing; alpha 1 is cross-entropy alone.
        Assert.Equal(0, Distillation.Loss(teacher, teacher, targets, config).Divergence.item<float>(), 5);
        Assert.Equal(ce, Distillation.Loss(student, teacher, targets, config with { Alpha = 1 }).Loss.item<float>(), 4);
        // Top-k with k = vocabulary is the whole distribution; a smaller k differs.
        Assert.Equal(forward, Distillation.Loss(student, teacher, targets, config with { TopK = 6 }).Divergence.item<float>(), 0.2);
        Assert.NotEqual(forward, Distillation.Loss(student, teacher, targets, config with { TopK = 2 }).Divergence.item<float>(), 3);
    }

    private static double[] Softmax(double[] x)
    {
        var max = x.Max();
        var e = x.Select(v => Math.Exp(v - max)).ToArray();
        return e.Select(v => v / e.Sum()).ToArray();
    }

    [Fact]
    public void Gradients_reach_the_student_and_never_the_teacher()
    {
        manual_seed(2);
        var config = new GptConfig { VocabSize = 50, Layers = 1, Heads = 2, Width = 16, Context = 8 };
        var student = new Gpt(config);
        var teacher = new Gpt(config with { Layers = 2 });
        foreach (var p in teacher.parameters()) p.requires_grad = false;
        var x = randint(0, 50, [2, 8]);
        var parts = Distillation.Loss(student.forward(x), teacher.forward(x), randint(0, 50, [2, 8]), new DistillationConfig { Teacher = "t" });
        parts.Loss.backward();
        Assert.All(student.parameters(), p => Assert.NotNull(p.grad));
        Assert.All(teacher.parameters(), p => Assert.Null(p.grad));
    }
}
