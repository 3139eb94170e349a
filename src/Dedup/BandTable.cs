namespace Pipeline.Dedup;

/// <summary>
/// The in-memory side of the LSH index: band key -> document, as an open-addressing hash table with linear probing
/// that allows repeated keys (several kept documents may share a band). A slot holds the key's top 32 bits and the
/// document number (8 bytes); the slot index is the key's top bits too, so the table can double without the full keys.
/// Two keys that share their top 32 bits look alike (one false candidate in about 2^32, which verification then
/// rejects). At most 3/4 full: 10.7-21 bytes per band entry, no per-entry objects for the GC to walk. Hand-written:
/// Dictionary costs three to four times the memory and cannot hold repeated keys without a list per key.
/// </summary>
internal sealed class BandTable
{
    private const int MaxBits = 31;
    private uint[] _tags;
    private uint[] _docs;
    private int _bits;

    public BandTable(int bits = 16)
    {
        _bits = bits;
        _tags = new uint[1 << bits];
        _docs = new uint[1 << bits];
    }

    public long Count { get; private set; }

    public long Bytes => _tags.LongLength * (sizeof(uint) + sizeof(uint));

    public void Add(ulong key, uint doc)
    {
        if ((Count + 1) * 4 > _tags.LongLength * 3) Grow();
        Place(_tags, _docs, _bits, Tag(key), doc);
        Count++;
    }

    /// <summary>Every document stored under <paramref name="key"/> (or a key with the same top 32 bits).</summary>
    public void Find(ulong key, List<uint> into)
    {
        var tag = Tag(key);
        var mask = _tags.Length - 1;
        for (var i = Slot(tag, _bits); _tags[i] != 0; i = (i + 1) & mask)
        {
            if (_tags[i] == tag) into.Add(_docs[i]);
        }
    }

    // 0 marks an empty slot, so a tag of 0 is stored as 1. The band keys are XxHash3 values: their bits are uniform.
    private static uint Tag(ulong key) => (uint)(key >> 32) is var tag && tag != 0 ? tag : 1;

    private static int Slot(uint tag, int bits) => (int)(tag >> (32 - bits));

    private static void Place(uint[] tags, uint[] docs, int bits, uint tag, uint doc)
    {
        var mask = tags.Length - 1;
        var i = Slot(tag, bits);
        while (tags[i] != 0) i = (i + 1) & mask;
        tags[i] = tag;
        docs[i] = doc;
    }

    private void Grow()
    {
        if (_bits >= MaxBits) throw new InvalidOperationException($"the LSH band table is full (2^{MaxBits} slots); use fewer bands or split the index");
        var bits = _bits + 1;
        var tags = new uint[1 << bits];
        var docs = new uint[1 << bits];
        for (var i = 0; i < _tags.Length; i++)
        {
            if (_tags[i] != 0) Place(tags, docs, bits, _tags[i], _docs[i]);
        }
        (_tags, _docs, _bits) = (tags, docs, bits);
    }
}
