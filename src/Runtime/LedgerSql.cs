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
