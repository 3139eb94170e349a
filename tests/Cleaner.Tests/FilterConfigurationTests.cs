namespace Pipeline.Cleaner.Tests;

public sealed class FilterConfigurationTests
{
    private static CleanerOptions With(string filter, string key, string value) =>
        new() { Filters = new(StringComparer.OrdinalIgnoreCase) { [filter] = new() { [key] = value } } };

    [Fact]
    public void Thresholds_come_from_configuration_and_rules_can_be_disabled()
    {
        var cleaner = new DocumentCleaner(new CleanerOptions(), []);
        var html = Fixtures.Pages("en").Select(File.ReadAllText).First(p => cleaner.Clean("a", "u", p).Document is not null);
        var strict = new DocumentCleaner(With("gopher_quality", "MinWords", "100000"), []).Clean("a", "u", html);
        Assert.Equal("gopher_quality", strict.RemovedBy);
        var without = new DocumentCleaner(With("gopher_quality", "Enabled", "false"), []);
        Assert.DoesNotContain(without.Recipe.AllSteps, s => s.Filter is Filters.GopherQualityFilter);
    }

    [Fact]
    public void A_misspelled_setting_names_the_filter_and_key()
    {
        var error = Assert.Throws<ArgumentException>(() => new DocumentCleaner(With("c4", "MinSentencez", "3"), []));
        Assert.Contains("Pipeline:Cleaner:Filters:c4:MinSentencez", error.Message);
        Assert.Contains("not a valid", Assert.Throws<ArgumentException>(() => new DocumentCleaner(With("c4", "MinSentences", "many"), [])).Message);
    }
}
