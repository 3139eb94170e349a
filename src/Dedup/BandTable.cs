namespace Pipeline.Dedup;

/// <summary>
/// The in-memory side of the LSH index: band key -> document, as an open-addressing hash table with linear probing
/// that allows repeated keys (several kept documents may share a band). Two flat arrays, 12 bytes per slot and at most
/// 3/4 full, so 16-24 bytes per band entry with no per-entry objects for the GC to walk. Hand-written: Dictionary
/// costs about twice the memory and cannot hold repeated keys without a list per key.
/// </summary>
internal sealed class BandTable
{
    private ulong[] _keys;
    private uint[] _docs;
    private int _mask;

    public BandTable(int capacityPowerOfTwo = 16)
    {
        _keys = new ulong[1 << capacityPowerOfTwo];
        _docs = new uint[1 << capacityPowerOfTwo];
        _mask = _keys.Length - 1;
    }

    public long Count { get; private set; }

    public long Bytes => _keys.LongLength * (sizeof(ulong) + sizeof(uint));

    public void Add(ulong key, uint doc)
    {
        if ((Count + 1) * 4 > _keys.LongLength * 3) Grow();
        Place(_keys, _docs, _mask, Stored(key), doc);
        Count++;
    }

    /// <summary>Every document stored under <paramref name="key"/>.</summary>
    public void Find(ulong key, List<uint> into)
    {
        var stored = Stored(key);
        for (var i = Slot(stored, _mask); _keys[i] != 0; i = (i + 1) & _mask)
        {
            if (_keys[i] == stored) into.Add(_docs[i]);
        }
    }

    // 0 marks an empty slot, so a key of 0 is stored as 1 (one more false candidate in 2^64, then verified).
    private static ulong Stored(ulong key) => key == 0 ? 1 : key;

    // The band keys are already XxHash3 values, so their low bits index the table directly.
    private static int Slot(ulong key, int mask) => (int)(key & (uint)mask);

    private static void Place(ulong[] keys, uint[] docs, int mask, ulong key, uint doc)
    {
        var i = Slot(key, mask);
        while (keys[i] != 0) i = (i + 1) & mask;
        keys[i] = key;
        docs[i] = doc;
    }

    private void Grow()
    {
        if (_keys.Length >= 1 << 30) throw new InvalidOperationException("the LSH band table is full (2^30 slots); use fewer bands or shard the index");
        var keys = new ulong[_keys.Length * 2];
        var docs = new uint[_keys.Length * 2];
        var mask = keys.Length - 1;
        for (var i = 0; i < _keys.Length; i++)
        {
            if (_keys[i] != 0) Place(keys, docs, mask, _keys[i], _docs[i]);
        }
        (_keys, _docs, _mask) = (keys, docs, mask);
    }
}
