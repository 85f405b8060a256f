using System.Text.RegularExpressions;
using System.Xml.Linq;

namespace Writeboost.Tests.Docs;

/// <summary>docs/design.md's table of project references is the project files': every project, every reference, nothing else.</summary>
[TestClass]
public sealed partial class DesignDocTests
{
    [TestMethod]
    public void The_design_documents_every_project_reference_and_no_other()
    {
        string root = Support.Lab.RepositoryRoot;
        Dictionary<string, string> documented = [];
        foreach (string line in File.ReadLines(Path.Combine(root, "docs", "design.md")))
        {
            Match row = TableRow().Match(line);
            if (row.Success)
            {
                documented[row.Groups[1].Value] = row.Groups[2].Value.Trim();
            }
        }
        Dictionary<string, string> actual = [];
        foreach (string project in Directory.GetFiles(Path.Combine(root, "src"), "*.csproj", SearchOption.AllDirectories))
        {
            IEnumerable<string> references = XDocument.Load(project).Descendants("ProjectReference")
                .Select(r => Path.GetFileNameWithoutExtension(r.Attribute("Include")!.Value.Replace('\\', '/')))
                .Order(StringComparer.Ordinal);
            string list = string.Join(", ", references);
            actual[Path.GetFileNameWithoutExtension(project)] = list.Length == 0 ? "(none)" : list;
        }
        CollectionAssert.AreEquivalent(actual.Keys.ToList(), documented.Keys.ToList(), "every project of src/ has its row in docs/design.md, and only those");
        foreach ((string project, string references) in actual)
        {
            Assert.AreEqual(references, documented[project], $"docs/design.md's references of {project} (sorted, as in its .csproj)");
        }
    }

    [GeneratedRegex(@"^\| (Writeboost\.\w+) \| (.+) \|$")]
    private static partial Regex TableRow();
}
