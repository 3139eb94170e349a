namespace Pipeline.Dedup.Tests;

public sealed class BandTableTests
{
    [Fact]
    public void Every_entry_is_found_after_the_table_doubles_and_repeated_keys_return_every_document()
    {
        var table = new BandTable(bits: 4);
        var random = new Random(5);
        var keys = Enumerable.Range(0, 50_000).Select(_ => (ulong)random.NextInt64() << 1 | 1).ToArray();
        for (var i = 0; i < keys.Length; i++) table.Add(keys[i], (uint)i);
        table.Add(keys[7], 999_999); // a second document with the same band
        Assert.Equal(50_001, table.Count);
        Assert.True(table.Bytes <= 50_001 * 8 * 8 / 3, $"{table.Bytes} bytes"); // at least 3/8 full after doubling

        var found = new List<uint>();
        for (var i = 0; i < keys.Length; i++)
        {
            found.Clear();
            table.Find(keys[i], found);
            Assert.Contains((uint)i, found);
        }
        found.Clear();
        table.Find(keys[7], found);
        Assert.Equal([7u, 999_999u], found.Order());

        found.Clear();
        table.Find(0x0123_4567_89AB_CDEFUL, found);
        Assert.Empty(found);
    }
}
