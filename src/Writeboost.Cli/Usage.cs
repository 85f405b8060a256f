using CommandLine;
using CommandLine.Text;

namespace Writeboost.Cli;

/// <summary>
/// What <c>wb</c> says when its arguments do not parse: help asked for (<c>--help</c>, <c>help VERB</c>,
/// <c>--version</c>) goes to stdout and exits 0; anything else is one line on stderr naming every problem and
/// where the help is, exit 2 — never the whole help page for one missing option.
/// </summary>
internal static class Usage
{
    /// <param name="reparse">Parses other arguments the same way (<c>wb help VERB</c> is shown as <c>wb VERB --help</c>).</param>
    internal static int Report(ParserResult<object> parsed, Func<string[], ParserResult<object>> reparse)
    {
        IReadOnlyList<Error> errors = [.. ((NotParsed<object>)parsed).Errors];
        if (errors.Any(e => e.Tag == ErrorType.VersionRequestedError))
        {
            Console.Out.WriteLine(HeadingInfo.Default);
            return 0;
        }
        if (errors.OfType<HelpVerbRequestedError>().FirstOrDefault(e => e.Matched) is { } verbHelp)
        {
            return Report(reparse([verbHelp.Verb, "--help"]), reparse);
        }
        if (errors.All(e => e.Tag is ErrorType.HelpRequestedError or ErrorType.HelpVerbRequestedError))
        {
            // No verb chosen (wb --help, wb help): the index of verbs; else the chosen verb's options.
            bool index = parsed.TypeInfo.Current == typeof(NullInstance) && !errors.Any(e => e is HelpVerbRequestedError { Matched: true });
            Console.Out.WriteLine(HelpText.AutoBuild(parsed, h => h, e => e, verbsIndex: index));
            return 0;
        }
        string verb = parsed.TypeInfo.Current.GetCustomAttributes(typeof(VerbAttribute), inherit: false) is [VerbAttribute attribute] ? attribute.Name : "";
        string where = verb.Length == 0 ? "wb" : $"wb {verb}";
        List<string> problems = [.. errors.Select(Describe).Where(p => p.Length > 0).Distinct()];
        Console.Error.WriteLine($"{where}: {string.Join("; ", problems)} ({where} --help lists {(verb.Length == 0 ? "the verbs" : "its options")})");
        return 2;
    }

    private static string Describe(Error error) => error switch
    {
        NoVerbSelectedError => "no verb given",
        BadVerbSelectedError bad => $"unknown verb '{bad.Token}'",
        MissingRequiredOptionError missing when missing.NameInfo.NameText.Length > 0 => $"the option {Name(missing.NameInfo)} is required",
        MissingRequiredOptionError => "an argument is missing",
        UnknownOptionError unknown => $"unknown option '{unknown.Token}'",
        MissingValueOptionError missing => $"the option {Name(missing.NameInfo)} needs a value",
        BadFormatConversionError bad => $"the option {Name(bad.NameInfo)} has a value of the wrong kind",
        SequenceOutOfRangeError range => $"{(range.NameInfo.NameText.Length > 0 ? range.NameInfo.NameText : "the arguments")}: too few or too many values",
        RepeatedOptionError repeated => $"the option {Name(repeated.NameInfo)} is given twice",
        BadFormatTokenError bad => $"cannot read '{bad.Token}'",
        SetValueExceptionError set => $"the option {Name(set.NameInfo)}: {set.Exception.Message}",
        _ => error.Tag.ToString(),
    };

    private static string Name(NameInfo name) =>
        name.LongName.Length > 0 ? $"--{name.LongName}" : name.ShortName.Length > 0 ? $"-{name.ShortName}" : name.NameText;
}
