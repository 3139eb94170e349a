using System.Data.Common;

namespace Pipeline.Runtime;

/// <summary>The statements' plumbing every store shares: one parameterized command, on either backend.</summary>
internal static class LedgerSql
{
    internal static string Now() => DateTimeOffset.UtcNow.ToString("O");

    internal static DbCommand Command(DbConnection c, string sql, params (string Name, object? Value)[] parameters)
    {
        var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            var parameter = cmd.CreateParameter();
            parameter.ParameterName = name;
            parameter.Value = value ?? DBNull.Value;
            // A null with no type cannot be inferred by PostgreSQL in every position; every nullable column is TEXT.
            if (value is null) parameter.DbType = System.Data.DbType.String;
            cmd.Parameters.Add(parameter);
        }
        return cmd;
    }

    /// <summary>
    /// A transaction that writes: on SQLite BEGIN IMMEDIATE, which takes the write lock before the first read, so two
    /// processes never both read and then fail to upgrade; on PostgreSQL an ordinary one.
    /// </summary>
    internal static DbTransaction BeginWrite(DbConnection c) =>
        c is Microsoft.Data.Sqlite.SqliteConnection sqlite ? sqlite.BeginTransaction(deferred: false) : c.BeginTransaction();

    internal static int Execute(DbConnection c, string sql, params (string Name, object? Value)[] parameters)
    {
        using var cmd = Command(c, sql, parameters);
        return cmd.ExecuteNonQuery();
    }

    internal static object? Scalar(DbConnection c, string sql, params (string Name, object? Value)[] parameters)
    {
        using var cmd = Command(c, sql, parameters);
        var value = cmd.ExecuteScalar();
        return value is DBNull ? null : value;
    }
}
