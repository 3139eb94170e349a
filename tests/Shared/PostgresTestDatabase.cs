using Npgsql;

namespace Pipeline.Tests.Shared;

/// <summary>
/// A database of its own on the test PostgreSQL server (the one .ci/run starts with scripts/postgres-local.sh;
/// PIPELINE_TEST_POSTGRES overrides the server's connection string), dropped on dispose.
/// </summary>
public sealed class PostgresTestDatabase : IDisposable
{
    public static string ServerConnectionString =>
        Environment.GetEnvironmentVariable("PIPELINE_TEST_POSTGRES") ?? "Host=127.0.0.1;Port=55432;Username=postgres;Database=postgres";

    private readonly string _name = "pipeline_test_" + Guid.NewGuid().ToString("N")[..12];

    public PostgresTestDatabase()
    {
        Admin($"CREATE DATABASE {_name}");
        ConnectionString = new NpgsqlConnectionStringBuilder(ServerConnectionString) { Database = _name }.ToString();
    }

    public string ConnectionString { get; }

    public void Dispose()
    {
        NpgsqlConnection.ClearAllPools();
        Admin($"DROP DATABASE IF EXISTS {_name} WITH (FORCE)");
    }

    private static void Admin(string sql)
    {
        using var connection = new NpgsqlConnection(ServerConnectionString);
        try
        {
            connection.Open();
        }
        catch (NpgsqlException e)
        {
            throw new InvalidOperationException(
                $"no PostgreSQL server for the tests at '{ServerConnectionString}' (start one with scripts/postgres-local.sh start): {e.Message}", e);
        }
        using var cmd = new NpgsqlCommand(sql, connection);
        cmd.ExecuteNonQuery();
    }
}
