using System.Diagnostics;
using System.Text.Json;
using Writeboost.Tests.Support;
using YamlDotNet.Serialization;

namespace Writeboost.Tests.CrashTest;

/// <summary>
/// deploy/kubernetes and deploy/Containerfile: the manifests read as YAML (YamlDotNet) and hang together, and the
/// commands they run — in sh, with the environment Kubernetes gives an Indexed Job's pods — really record, shard
/// and merge a campaign here, with the volume a temp directory.
/// </summary>
[TestClass]
public sealed class DeployManifestTests
{
    private static string Deploy(params string[] path) => Path.Combine([Support.Lab.RepositoryRoot, "deploy", .. path]);

    [TestMethod]
    public void The_indexed_job_checks_the_recording_in_as_many_shards_as_it_has_completions()
    {
        JsonElement volume = Yaml("volume.yaml");
        JsonElement record = Yaml("record-job.yaml");
        JsonElement shards = Yaml("shards-job.yaml");
        JsonElement merge = Yaml("merge-job.yaml");
        Assert.AreEqual("PersistentVolumeClaim", volume.GetProperty("kind").GetString());
        CollectionAssert.Contains(volume.GetProperty("spec").GetProperty("accessModes").EnumerateArray().Select(m => m.GetString()).ToList(), "ReadWriteMany", "shards on several nodes share it");

        JsonElement spec = shards.GetProperty("spec");
        Assert.AreEqual("Indexed", spec.GetProperty("completionMode").GetString(), "JOB_COMPLETION_INDEX is set only in an Indexed Job");
        string completions = spec.GetProperty("completions").GetString()!;
        Assert.AreEqual(completions, Env(shards, "WB_SHARD_COUNT"), "WB_SHARD_COUNT must be the Job's completions");
        StringAssert.Contains(Command(shards), "--recording /campaign/recording");
        StringAssert.Contains(Command(shards), "--result-dir /campaign/results");
        StringAssert.Contains(Command(record), "wb crashtest record /campaign/recording");
        StringAssert.Contains(Command(merge), "wb crashtest merge /campaign/results");
        Assert.AreEqual("0", merge.GetProperty("spec").GetProperty("backoffLimit").GetString(), "the merge's exit code is the verdict: never retried");

        string claim = volume.GetProperty("metadata").GetProperty("name").GetString()!;
        string? image = null;
        foreach (JsonElement job in new[] { record, shards, merge })
        {
            Assert.AreEqual("batch/v1", job.GetProperty("apiVersion").GetString());
            Assert.AreEqual("Job", job.GetProperty("kind").GetString());
            JsonElement pod = job.GetProperty("spec").GetProperty("template").GetProperty("spec");
            Assert.AreEqual("Never", pod.GetProperty("restartPolicy").GetString());
            JsonElement container = pod.GetProperty("containers")[0];
            image ??= container.GetProperty("image").GetString();
            Assert.AreEqual(image, container.GetProperty("image").GetString(), "one image for every step");
            JsonElement mount = container.GetProperty("volumeMounts")[0];
            Assert.AreEqual("/campaign", mount.GetProperty("mountPath").GetString());
            JsonElement podVolume = pod.GetProperty("volumes").EnumerateArray().Single(v => v.GetProperty("name").GetString() == mount.GetProperty("name").GetString());
            Assert.AreEqual(claim, podVolume.GetProperty("persistentVolumeClaim").GetProperty("claimName").GetString());
        }
        string containerfile = File.ReadAllText(Deploy("Containerfile"));
        StringAssert.Contains(containerfile, $"-t {image}", "the Containerfile says how to build the manifests' image");
        StringAssert.Contains(containerfile, "FROM mcr.microsoft.com/dotnet/runtime:10.0");
        StringAssert.Contains(containerfile, "libpmem1");
        StringAssert.Contains(containerfile, "dotnet publish src/Writeboost.Cli/Writeboost.Cli.csproj");
        StringAssert.Contains(containerfile, "ENTRYPOINT [\"wb\"]");
    }

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public void The_manifests_commands_record_shard_and_merge_a_campaign_as_the_pods_would()
    {
        using TempDirectory temp = new();
        string Here(string command) => command.Replace("/campaign", temp.Path, StringComparison.Ordinal);
        JsonElement shards = Yaml("shards-job.yaml");
        int count = int.Parse(Env(shards, "WB_SHARD_COUNT")!, System.Globalization.CultureInfo.InvariantCulture);
        // The record Job's command with a small campaign in WB_CAMPAIGN (the manifest's is a real one).
        Sh(Here(Command(Yaml("record-job.yaml"))), new() { ["WB_CAMPAIGN"] = string.Join(' ', ShardedCampaignTests.SmallCampaign()) });
        Parallel.For(0, count, index => Sh(Here(Command(shards)), new() { ["JOB_COMPLETION_INDEX"] = $"{index}", ["WB_SHARD_COUNT"] = Env(shards, "WB_SHARD_COUNT")! }));
        CollectionAssert.AreEquivalent(Enumerable.Range(0, count).Select(i => $"shard-{i}-of-{count}.json").ToList(), Directory.GetFiles(Path.Combine(temp.Path, "results")).Select(Path.GetFileName).ToList());
        Sh(Here(Command(Yaml("merge-job.yaml"))), []);
        WbResult unsharded = WbProcess.Run(null, "crashtest", "--recording", Path.Combine(temp.Path, "recording"), "--json", "--no-minimise");
        ShardedCampaignTests.AssertSameCampaign(ShardedCampaignTests.Json(unsharded.Stdout), ShardedCampaignTests.Json(File.ReadAllText(Path.Combine(temp.Path, "merged.json"))));
    }

    /// <summary>A manifest as JSON (YamlDotNet reads it; scalars stay text).</summary>
    private static JsonElement Yaml(string file)
    {
        using StreamReader reader = new(Deploy("kubernetes", file));
        object? document = new DeserializerBuilder().Build().Deserialize(reader);
        string json = new SerializerBuilder().JsonCompatible().Build().Serialize(document!);
        return JsonDocument.Parse(json).RootElement.Clone();
    }

    private static JsonElement Container(JsonElement job) => job.GetProperty("spec").GetProperty("template").GetProperty("spec").GetProperty("containers")[0];

    /// <summary>The container's shell command: command is sh -c, the one argument the script.</summary>
    private static string Command(JsonElement job)
    {
        JsonElement container = Container(job);
        CollectionAssert.AreEqual(new[] { "sh", "-c" }, container.GetProperty("command").EnumerateArray().Select(c => c.GetString()).ToArray());
        return container.GetProperty("args").EnumerateArray().Single().GetString()!;
    }

    private static string? Env(JsonElement job, string name) =>
        Container(job).GetProperty("env").EnumerateArray().SingleOrDefault(e => e.GetProperty("name").GetString() == name) is { ValueKind: JsonValueKind.Object } e
            ? e.GetProperty("value").GetString()
            : null;

    /// <summary>Runs a command as a pod would (sh -c), wb on PATH, the pod's environment added; it must succeed.</summary>
    private static void Sh(string command, Dictionary<string, string> environment)
    {
        ProcessStartInfo start = new("sh") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(command);
        start.Environment["PATH"] = AppContext.BaseDirectory + ":" + Environment.GetEnvironmentVariable("PATH");
        foreach ((string key, string value) in environment)
        {
            start.Environment[key] = value;
        }
        using Process process = Process.Start(start)!;
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        Assert.AreEqual(0, process.ExitCode, $"{command}\n{stdout}\n{stderr.Result}");
    }
}
