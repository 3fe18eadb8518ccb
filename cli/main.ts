/**
 * `sgan`: one CLI for every task. Each command lives in cli/commands/<name>.ts and registers itself
 * on the program; this file only assembles them and turns usage errors into exit code 2.
 */
import { Command, CommanderError } from 'commander';
import * as commands from './commands';

export function buildProgram(): Command {
  const program = new Command('sgan')
    .description('Stacked Generative Adversarial Networks (Huang et al., CVPR 2017) on TensorFlow.js')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  for (const register of Object.values(commands)) register(program);
  // Every subcommand inherits strict parsing and the exit override.
  program.commands.forEach(function strict(c: Command) {
    c.exitOverride().showHelpAfterError('(run with --help for usage)');
    c.commands.forEach(strict);
  });
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) {
      // help and version are not errors; everything else commander raises is a usage error.
      const ok = e.code === 'commander.helpDisplayed' || e.code === 'commander.help' || e.code === 'commander.version';
      process.exit(ok ? 0 : 2);
    }
    process.stderr.write(`sgan: ${(e as Error).message}\n`);
    if (process.env.SGAN_DEBUG) process.stderr.write(`${(e as Error).stack}\n`);
    process.exit(1);
  }
}
