using BenchmarkDotNet.Running;

// Every benchmark of this assembly, as BenchmarkDotNet's command line chooses (--filter, --job, --inProcess ...).
BenchmarkSwitcher.FromAssembly(typeof(Writeboost.Microbenchmarks.Checksums).Assembly).Run(args);
