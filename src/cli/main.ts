/** kvpa's command line: one dispatcher, one module per subcommand. */
export async function main(argv: readonly string[]): Promise<number> {
  const [command] = argv;
  process.stderr.write(`kvpa: unknown command ${JSON.stringify(command ?? '')}\n`);
  return 2;
}
