/*
 * main.c: the `copse` command: checks that the library it runs against is the one it was
 * compiled for, then hands argv to a subcommand.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "readers/reader.h"

static const char main_help[] =
    "usage: copse COMMAND [options]\n"
    "\n"
    "Approximate nearest neighbour search with a forest of random-projection trees.\n"
    "\n"
    "commands:\n"
    "  build    read vectors from a file and write an index\n"
    "  query    nearest neighbours of items, labels, vectors, words or a query file\n"
    "  info     what an index holds\n"
    "  verify   full checksum and structure check of index files\n"
    "  bench    recall@k and queries per second for a list of search_k values\n"
    "  add      add or replace items in an index file, without a rebuild\n"
    "  delete   delete items from an index file\n"
    "  tag      change the tags of items in an index file\n"
    "  compact  rebuild an index file from its live items\n"
    "  demo     index Fashion-MNIST images, compare with exhaustive search, draw a PNG\n"
    "  demo-words\n"
    "           \"chinese river\": nearest words by copse beside exhaustive search\n"
    "\n"
    "`copse COMMAND --help` describes each; copse(1) has the details.\n"
    "\n";

/* Then the input formats, listed from the readers' table. */

static const char main_help_end[] =
    "\n"
    "exit status:\n"
    "  0  success\n"
    "  1  other failure (out of memory, a thread could not start)\n"
    "  2  usage error: unknown option, missing or malformed argument\n"
    "  3  bad input data: malformed record, NaN, wrong dimension, unknown item or label\n"
    "  4  I/O or format error: a file cannot be read or written, or is not a copse index\n"
    "     (or is from a newer format version)\n"
    "  5  an index file is damaged (checksum or structure)\n"
    "\n"
    "  -h, --help      this help\n"
    "  -V, --version   library and file-format versions\n";

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
} command;

static const command commands[] = {
    {"build", cmd_build}, {"query", cmd_query}, {"info", cmd_info},
    {"verify", cmd_verify}, {"bench", cmd_bench}, {"demo", cmd_demo},
    {"demo-words", cmd_demo_words}, {"add", cmd_add}, {"delete", cmd_delete},
    {"compact", cmd_compact}, {"tag", cmd_tag},
};

static void print_help(void)
{
    char names[READER_FORMAT_LIST_SIZE], text[READER_FORMAT_LIST_SIZE + 64];
    snprintf(text, sizeof text, "%s; any of them may be gzip-compressed.",
             reader_format_names(names));
    fputs(main_help, stdout);
    cli_print_wrapped(stdout, "input formats: ", 0, text, 91);
    fputs(main_help_end, stdout);
}

static void print_version(void)
{
    int major = 0, minor = 0;
    copse_format_version(&major, &minor);
    printf("copse %s (file format %d.%d)\n", copse_version_string(), major, minor);
}

/* A tool built against one header but loaded with another library could misread every
 * call, so it refuses to run rather than guess. */
static int check_library(void)
{
    if (copse_version_number() == COPSE_VERSION_NUMBER)
        return 0;
    fprintf(stderr,
            "copse: built for library version %d.%d.%d but running with %s; reinstall one "
            "or the other\n",
            COPSE_VERSION_MAJOR, COPSE_VERSION_MINOR, COPSE_VERSION_PATCH,
            copse_version_string());
    return EXIT_FAIL;
}

int main(int argc, char **argv)
{
    if (check_library() != 0)
        return EXIT_FAIL;
    if (argc < 2) {
        fputs("copse: no command given\nusage: copse COMMAND [options]  (copse --help lists "
              "the commands)\n",
              stderr);
        return EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "-h") == 0 || strcmp(name, "--help") == 0 || strcmp(name, "help") == 0) {
        print_help();
        return EXIT_OK;
    }
    if (strcmp(name, "-V") == 0 || strcmp(name, "--version") == 0) {
        print_version();
        return EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(name, commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "copse: unknown command '%s' (see copse --help)\n", name);
    return EXIT_USAGE;
}
